// Package jsmsg settles JetStream messages by hand, the way code without Loudly's runner
// does.
package jsmsg

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

type worker struct{ log *slog.Logger }

func process(b []byte) error  { return nil }
func duplicate(b []byte) bool { return false }

// An ack inside an error branch tells the broker the failed work succeeded.
func (w *worker) handle(m jetstream.Msg) {
	if err := process(m.Data()); err != nil {
		m.Ack() // want `silent path: branch "if err != nil" acknowledges the message \(m.Ack\) on an error path, so the broker deletes it as if it had succeeded; return an outcome \(consumer.Retry\(reason, err\) or consumer.Invalid\(reason, err\)\) and let the runner settle it`
		return
	}
	m.Ack() // the main path
}

// An ack in an error branch that logs leaves a trace: the corpus's labelling rule (issue
// #35) counts a logged error as a recorded outcome, so it is not a silent drop. (It was
// reported until the third held-out set, where it was most of the false alarms.)
func (w *worker) handleLogged(ctx context.Context, m jetstream.Msg) {
	err := process(m.Data())
	if err != nil {
		w.log.Error("process failed", "error", err)
		_ = m.DoubleAck(ctx)
		return
	}
	if err == nil {
		_ = m.Ack()
	} else {
		_ = m.Ack() // want `branch "else of if err == nil" acknowledges the message \(m.Ack\) on an error path`
	}
}

// Terminating with a recorded reason is a decision; without one it is a silent drop.
func (w *worker) handleTerm(m jetstream.Msg) error {
	if err := process(m.Data()); errors.Is(err, errPoison) {
		w.log.Warn("poison message", "error", err)
		return m.TermWithReason("poison")
	}
	if err := process(m.Data()); err != nil {
		return m.Term() // want `silent path: branch "if err != nil" settles the message \(m.Term\) without recording a decision; return an outcome \(consumer.Invalid\(reason, err\), which dead-letters it\) or record it with telemetry Decisions.Record before settling`
	}
	if duplicate(m.Data()) {
		m.Ack() // want `silent path: branch "if duplicate\(m.Data\(\)\)" settles the message \(m.Ack\) without recording a decision; return an outcome \(consumer.Applied\(reason\) or consumer.Duplicate\(reason\)\)`
		return nil
	}
	if len(m.Data()) == 0 {
		w.log.Info("empty message acked", "subject", m.Subject())
		return m.Ack()
	}
	if err := process(m.Data()); err != nil {
		return m.NakWithDelay(time.Second) // a retry is not a drop
	}
	return m.Ack()
}

var errPoison = errors.New("poison")

// Returning the ack's own error is not a trace.
func returnAck(m jetstream.Msg) error {
	if duplicate(m.Data()) {
		return m.Ack() // want `settles the message \(m.Ack\) without recording a decision`
	}
	return process(m.Data())
}

// The runner's own settle: every branch hands a settlement label back to a caller that
// records it.
func settle(ctx context.Context, m jetstream.Msg, kind string) (string, error) {
	switch kind {
	case "applied", "duplicate":
		return "ack", m.DoubleAck(ctx)
	case "retry":
		return "nak", m.NakWithDelay(time.Second)
	default:
		if err := publishLetter(ctx, m); err != nil {
			return "nak", m.NakWithDelay(time.Second)
		}
		return "term", m.TermWithReason(kind)
	}
}

func publishLetter(ctx context.Context, m jetstream.Msg) error { return nil }

// A function that settles messages without receiving one is message-handling code too.
func drain(ctx context.Context, c jetstream.Consumer) error {
	msgs, err := c.Fetch(10)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if duplicate(m.Data()) {
			return nil // want `branch "if duplicate\(m.Data\(\)\)" returns nil from a message handler`
		}
		if err := process(m.Data()); err != nil {
			_ = m.Nak()
			return nil // released for redelivery: not a drop
		}
		_ = m.Ack()
	}
	return nil
}

// A callback handed to Consume.
func consume(c jetstream.Consumer, log *slog.Logger) {
	c.Consume(func(m jetstream.Msg) {
		if len(m.Data()) == 0 {
			return // want `branch "if len\(m.Data\(\)\) == 0" returns from a message handler without settling the message or recording a decision; record it with telemetry Decisions.Record and settle it`
		}
		if err := process(m.Data()); err != nil {
			log.Error("process", "error", err)
			return // logged: AckWait redelivers it
		}
		_ = m.Ack()
	})
	c.Consume(func(m jetstream.Msg) {
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-done:
					return // a keep-alive loop: it settles (InProgress) but receives no message
				case <-t.C:
					_ = m.InProgress()
				}
			}
		}()
		defer close(done)
		_ = m.Ack()
	})
}

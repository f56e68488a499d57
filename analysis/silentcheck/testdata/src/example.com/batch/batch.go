// Package batch has the batch shape of a JetStream pull consumer,
// func(ctx, msgs []*nats.Msg) bool, where true acknowledges the batch and false asks for
// redelivery, and the fetch loop that calls it.
package batch

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"

	"github.com/getsentry/sentry-go"
	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"
)

// Consume is a team's own wrapper around a pull subscription: anything handed to it is
// handed messages.
func Consume(ctx context.Context, sub *nats.Subscription, f func(ctx context.Context, msgs []*nats.Msg) bool) {
	for {
		msgs, err := sub.Fetch(10)
		if err != nil {
			logrus.WithError(err).Error("fetch")
			return
		}
		// An ack conditioned on the handler's own success is the success path.
		if f(ctx, msgs) {
			for _, m := range msgs {
				_ = m.Ack()
			}
		} else {
			for _, m := range msgs {
				_ = m.Nak()
			}
		}
	}
}

type consumer struct{ sub *nats.Subscription }

func (c *consumer) Start(ctx context.Context) { Consume(ctx, c.sub, c.onMessage) }

func store(ts int) error { return nil }

func (c *consumer) onMessage(ctx context.Context, msgs []*nats.Msg) bool {
	msg := msgs[0]
	ts, err := strconv.Atoi(msg.Header.Get("ts"))
	if err != nil {
		return true // want `silent path: branch "if err != nil" returns true \(the batch is acknowledged\) from a message handler without recording a decision`
	}
	var v map[string]any
	if err := json.Unmarshal(msg.Data, &v); err != nil {
		logrus.WithError(err).WithField("subject", msg.Subject).Error("parse failure")
		return true
	}
	if ts < 0 {
		sentry.CaptureException(errors.New("negative timestamp"))
		return true
	}
	if ts == 0 {
		println("zero timestamp, dropped")
		return true
	}
	if err := store(ts); err != nil {
		return false // redelivered: not a drop
	}
	return true
}

// A terminated message with no trace is caught whatever the shape.
func (c *consumer) onInput(ctx context.Context, msgs []*nats.Msg) bool {
	var v map[string]any
	if err := json.Unmarshal(msgs[0].Data, &v); err != nil {
		_ = msgs[0].Term() // want `silent path: branch "if err != nil" settles the message \(msgs\[0\].Term\) without recording a decision`
		return true
	}
	return true
}

func fetchLoop(sub *nats.Subscription, log *slog.Logger) {
	msgs, _ := sub.Fetch(10)
	for _, m := range msgs {
		m.Term() // want `silent path: branch "for range msgs" settles the message \(m.Term\) without recording a decision`
	}
	for _, m := range msgs {
		log.Warn("poison", "subject", m.Subject)
		m.Term()
	}
}

func poison(m *nats.Msg) {
	m.Term() // want `silent path: branch "main path" settles the message \(m.Term\) without recording a decision`
}

func process(m *nats.Msg) bool   { return true }
func duplicate(m *nats.Msg) bool { return false }

// if process(m) { m.Ack() }: the ack follows the work's own success.
func drain(sub *nats.Subscription) {
	msgs, _ := sub.Fetch(10)
	for _, m := range msgs {
		if process(m) {
			m.Ack()
		}
	}
	for _, m := range msgs {
		if ok := process(m); !ok {
			m.Nak()
		} else {
			m.Ack()
		}
	}
	for _, m := range msgs {
		if duplicate(m) {
			m.Ack() // want `silent path: branch "if duplicate\(m\)" settles the message \(m.Ack\) without recording a decision`
			continue
		}
		m.Ack()
	}
}

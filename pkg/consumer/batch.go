package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/telemetry"
)

// BatchHandler decides a batch of messages, in stream order, typically in one database
// transaction. It calls decide exactly once for each message (by its index in msgs), as
// soon as that message's result is known, in any order; the runner settles and records
// each result at once, so a message decided early is never held back by its neighbours.
//
// It returns an error only when the batch failed as a whole and nothing it did for the
// undecided messages took effect (a deadlock, a serialization failure, a lost
// connection): the runner then decides each undecided message again on its own, in a
// batch of one, so a message that breaks the batch fails alone and every other one gets
// its own correct result. Given one message, a handler should decide it (a Retry with its
// reason for a transient failure) rather than return an error.
type BatchHandler func(ctx context.Context, msgs []*Message, decide func(i int, r Result)) error

// prefetch is how many messages the runner asks the broker for ahead of its handlers:
// enough to fill a batch for every handler goroutine, never more than may be in flight.
func (r *Runner) prefetch() int {
	n := r.cfg.Concurrency * 2
	if r.batch != nil {
		n = max(n, r.cfg.Concurrency*r.cfg.BatchSize)
	}
	return max(1, min(n, r.cfg.MaxAckPending))
}

// fill waits for its turn (filling) and gathers the next batch. It reports false once work
// is closed, and no batch for a message handed over as the shutdown began, which it
// releases: not started.
func (r *Runner) fill(ctx context.Context, filling *sync.Mutex, work <-chan jetstream.Msg) ([]jetstream.Msg, bool) {
	filling.Lock()
	defer filling.Unlock()
	m, ok := <-work
	switch {
	case !ok:
		return nil, false
	case ctx.Err() != nil:
		r.release(m)
		return nil, true
	}
	return r.gather(ctx, m, work), true
}

// gather collects a batch that starts with first: the messages that arrive within
// BatchWait, up to BatchSize. A message arriving after the shutdown began is released.
func (r *Runner) gather(ctx context.Context, first jetstream.Msg, work <-chan jetstream.Msg) []jetstream.Msg {
	batch := []jetstream.Msg{first}
	linger := time.NewTimer(r.cfg.BatchWait)
	defer linger.Stop()
	for len(batch) < r.cfg.BatchSize {
		select {
		case m, ok := <-work:
			if !ok {
				return batch
			}
			if ctx.Err() != nil {
				r.release(m)
				continue
			}
			batch = append(batch, m)
		case <-linger.C:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// handleBatch runs a batch from receipt to settlement. The batch has a span of its own,
// and each message its own span (a child of its producer's, linked to the batch's), its
// own result, settlement and record — exactly as if it had been decided alone.
func (r *Runner) handleBatch(jms []jetstream.Msg) {
	bctx, cancel := context.WithTimeout(context.Background(), r.cfg.AckWait)
	defer cancel()
	bctx, bspan := r.tracer.Start(bctx, "process batch "+r.cfg.Name,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.destination.name", r.cfg.FilterSubject),
			attribute.String("messaging.consumer.group.name", r.cfg.Name),
			attribute.Int("messaging.batch.message_count", len(jms)),
		))
	defer bspan.End()
	r.batchSize.Record(bctx, int64(len(jms)), r.attrs)
	link := trace.WithLinks(trace.LinkFromContext(bctx, attribute.String("loudly.link", "batch")))

	var settling sync.WaitGroup
	finish := func(d *delivery, res Result) { settling.Go(func() { r.finish(d, res) }) }
	var pending []*delivery
	for _, jm := range jms {
		d := r.receive(jm, link)
		if res, decided := r.predecide(d.msg); decided {
			finish(d, res)
			continue
		}
		pending = append(pending, d)
	}
	if len(pending) > 0 {
		r.decideBatch(bctx, pending, finish)
	}
	settling.Wait()
}

// errBatchPanic marks a batch whose handler panicked: like a failed transaction, its
// undecided messages are decided again one by one.
var errBatchPanic = errors.New("batch handler panicked")

// decideBatch has the handler decide ds, falls back to one message at a time when the
// batch fails as a whole, and leaves no message undecided.
func (r *Runner) decideBatch(ctx context.Context, ds []*delivery, finish func(*delivery, Result)) {
	decided := make([]atomic.Bool, len(ds))
	decide := func(i int, res Result) {
		if i < 0 || i >= len(ds) || !decided[i].CompareAndSwap(false, true) {
			return // an index out of range or decided twice: the first result stands
		}
		finish(ds[i], res)
	}
	stop := r.heartbeat(ctx, func() {
		for i, d := range ds {
			if !decided[i].Load() && d.ctx.Err() == nil {
				_ = d.jm.InProgress()
			}
		}
	})
	defer stop()

	msgs := make([]*Message, len(ds))
	for i, d := range ds {
		msgs[i] = d.msg
	}
	err := r.callBatch(ctx, msgs, decide)
	if err != nil && len(ds) > 1 {
		// A branch like any other: the batch span says the batch failed and why, and that
		// its messages are decided again one by one.
		r.tel.Decisions.Record(ctx, telemetry.Decision{
			Stage: telemetry.StageBatch, Outcome: telemetry.Retry, Reason: "batch_failed", Err: err,
			Attrs: []slog.Attr{slog.String("consumer", r.cfg.Name), slog.Int("messages", len(ds))},
		})
		for i, d := range ds {
			if decided[i].Load() {
				continue
			}
			one := func(_ int, res Result) { decide(i, res) }
			if err := r.callBatch(d.ctx, []*Message{d.msg}, one); err != nil {
				decide(i, Retry("batch_failed", err))
			}
		}
	} else if err != nil {
		decide(0, Retry("batch_failed", err))
	}
	for i := range ds {
		decide(i, Invalid("no_outcome", errors.New("batch handler decided nothing for this message: a branch is missing its decision")))
	}
}

// callBatch runs the batch handler, turning a panic into a failed batch.
func (r *Runner) callBatch(ctx context.Context, msgs []*Message, decide func(int, Result)) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v\n%s", errBatchPanic, p, debug.Stack())
		}
	}()
	return r.batch(ctx, msgs, decide)
}

package drill

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/consumer"
	"loudly/pkg/faults"
	"loudly/pkg/telemetry"
)

// ErrInjectedOutage is the error of a message failed by the db-outage drill.
var ErrInjectedOutage = errors.New("database unavailable (drill fault db-outage)")

// Consumer returns the consumer drills as middleware for the service's handler
// (consumer.Handle, consumer.HandleBatch): silent-skip, db-outage and ack-timeout, in that
// order. applied is the reason the handler gives a message it applied, which silent-skip
// claims for the messages it drops; ackWait is the consumer's ack wait, which ack-timeout
// overstays. With drills off (a nil *Drills) it returns none.
func (d *Drills) Consumer(applied string, ackWait time.Duration) []consumer.Middleware {
	if d == nil {
		return nil
	}
	return []consumer.Middleware{d.silentSkip(applied), d.dbOutage, d.ackTimeout(ackWait)}
}

// silentSkip is the original outage, on purpose: claim success, do nothing, say nothing
// more. It marks no span: the drill is finding it without help.
func (d *Drills) silentSkip(applied string) consumer.Middleware {
	return func(next consumer.Handler) consumer.Handler {
		return func(ctx context.Context, m *consumer.Message) consumer.Result {
			if d.Hit(SilentSkip) {
				return consumer.Applied(applied)
			}
			return next(ctx, m)
		}
	}
}

// dbOutage fails messages as an unreachable database would: a retry, with the reason the
// services give a real one.
func (d *Drills) dbOutage(next consumer.Handler) consumer.Handler {
	return func(ctx context.Context, m *consumer.Message) consumer.Result {
		if d.Hit(DBOutage) {
			trace.SpanFromContext(ctx).SetAttributes(faults.Attr(DBOutage))
			return consumer.Retry("db_unavailable", ErrInjectedOutage)
		}
		return next(ctx, m)
	}
}

// ackTimeout lets a message's change commit, then stalls like a handler stuck in a call
// that never returns: past the handler's deadline the runner stops its heartbeats, the
// broker redelivers once the ack wait has passed, and the idempotency record turns the
// redelivery into a duplicate.
func (d *Drills) ackTimeout(ackWait time.Duration) consumer.Middleware {
	return func(next consumer.Handler) consumer.Handler {
		return func(ctx context.Context, m *consumer.Message) consumer.Result {
			res := next(ctx, m)
			if res.Outcome() == telemetry.Applied && d.Hit(AckTimeout) {
				trace.SpanFromContext(ctx).SetAttributes(faults.Attr(AckTimeout))
				<-ctx.Done()
				time.Sleep(ackWait + time.Second)
			}
			return res
		}
	}
}

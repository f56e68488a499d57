package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/faults"
	"loudly/pkg/outbox"
)

// Latency is the db-latency drill as a seam of the service's transactions: a store calls
// it with the first pipelined batch of a transaction deciding n messages (postgres.Begin's),
// and while the drill is active it queues a wait there, inside the transaction, holding its
// connection, as a slow database would: the drill's intensity in seconds for each message,
// so a batch of n is slowed like n messages decided one by one — but never past ctx's
// deadline (the handler's), so the drill slows the pipeline without turning into timeouts.
func (d *Drills) Latency(ctx context.Context, n int, b *pgx.Batch) {
	f, ok := d.Get(DBLatency)
	if !ok {
		return
	}
	trace.SpanFromContext(ctx).SetAttributes(faults.Attr(DBLatency))
	wait := time.Duration(f.Intensity * float64(n) * float64(time.Second))
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)*9/10) // the rest of the transaction needs time too
	}
	b.Queue(`SELECT pg_sleep($1)`, max(wait, 0).Seconds())
}

// Publisher decorates the outbox relay's publisher (service.Base.Outbox takes decorators)
// with the outbox-stall drill: while it is active a publish hangs, as a relay stuck on a
// broker that never answers would. The rows it claimed and every row behind them stay in
// the outbox, and go out as soon as the fault ends (or fail and are retried, if the
// service shuts down meanwhile). With drills off it returns next itself.
func (d *Drills) Publisher(next outbox.Publisher) outbox.Publisher {
	if d == nil {
		return next
	}
	return outbox.PublisherFunc(func(ctx context.Context, msg *nats.Msg, eventID string) (jetstream.PubAckFuture, error) {
		if _, stalled := d.Get(OutboxStall); stalled {
			trace.SpanFromContext(ctx).SetAttributes(faults.Attr(OutboxStall))
			for stalled {
				select {
				case <-ctx.Done():
					return nil, fmt.Errorf("relay stalled (drill fault outbox-stall): %w", ctx.Err())
				case <-time.After(100 * time.Millisecond):
				}
				_, stalled = d.Get(OutboxStall)
			}
		}
		return next.Publish(ctx, msg, eventID)
	})
}

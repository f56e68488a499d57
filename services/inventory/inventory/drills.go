package inventory

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/consumer"
	"loudly/pkg/faults"
	"loudly/pkg/telemetry"
	"loudly/services/drill"
)

// drills applies the inventory service's drill faults, every one of them from outside the
// business code: consumer middleware around the reservation handler (silent-skip,
// db-outage, ack-timeout) and decorators of the store's two seams (db-latency right after
// a transaction begins, stock-out on the stock just read). wire is the one place
// they are attached; a service without drills never calls it.
type drills struct {
	faults  *faults.Watcher
	hotSKU  string        // the SKU stock-out empties
	ackWait time.Duration // the consumer's ack wait, which ack-timeout overstays
}

var errInjectedOutage = errors.New("database unavailable (drill fault db-outage)")

// wire decorates the store and returns the middleware for the handler.
func (d *drills) wire(st *store) []consumer.Middleware {
	opened, read := st.opened, st.stockRead
	st.opened = func(ctx context.Context, n int, b *pgx.Batch) {
		opened(ctx, n, b)
		if f, ok := d.faults.Get(drill.DBLatency); ok {
			// The wait happens inside the transaction, before its locks, holding its
			// connection, as a slow database would: this long for each reservation, so a
			// batch of n orders is slowed like n orders decided one by one — but never
			// past the handler's deadline, so the drill slows the pipeline without
			// turning into timeouts.
			trace.SpanFromContext(ctx).SetAttributes(faults.Attr(drill.DBLatency))
			wait := time.Duration(f.Intensity * float64(n) * float64(time.Second))
			if dl, ok := ctx.Deadline(); ok {
				wait = min(wait, time.Until(dl)*9/10) // the rest of the transaction needs time too
			}
			b.Queue(`SELECT pg_sleep($1)`, max(wait, 0).Seconds())
		}
	}
	st.stockRead = func(ctx context.Context, available map[string]int) {
		read(ctx, available)
		if _, hot := available[d.hotSKU]; hot && d.faults.Hit(drill.StockOut) {
			trace.SpanFromContext(ctx).SetAttributes(faults.Attr(drill.StockOut))
			available[d.hotSKU] = 0
		}
	}
	return []consumer.Middleware{d.silentSkip, d.dbOutage, d.ackTimeout}
}

// silentSkip is the original outage, on purpose: claim success, do nothing, say nothing
// more. It marks no span: the drill is finding it without help.
func (d *drills) silentSkip(next consumer.Handler) consumer.Handler {
	return func(ctx context.Context, m *consumer.Message) consumer.Result {
		if d.faults.Hit(drill.SilentSkip) {
			return consumer.Applied("reserved")
		}
		return next(ctx, m)
	}
}

// dbOutage fails reservations as an unreachable database would.
func (d *drills) dbOutage(next consumer.Handler) consumer.Handler {
	return func(ctx context.Context, m *consumer.Message) consumer.Result {
		if d.faults.Hit(drill.DBOutage) {
			trace.SpanFromContext(ctx).SetAttributes(faults.Attr(drill.DBOutage))
			return consumer.Retry("db_unavailable", errInjectedOutage)
		}
		return next(ctx, m)
	}
}

// ackTimeout lets a reservation commit, then stalls like a handler stuck in a call that
// never returns: past the handler's deadline the runner stops its heartbeats, the broker
// redelivers once the ack wait has passed, and the idempotency record turns the
// redelivery into a duplicate.
func (d *drills) ackTimeout(next consumer.Handler) consumer.Handler {
	return func(ctx context.Context, m *consumer.Message) consumer.Result {
		res := next(ctx, m)
		if res.Outcome() == telemetry.Applied && d.faults.Hit(drill.AckTimeout) {
			trace.SpanFromContext(ctx).SetAttributes(faults.Attr(drill.AckTimeout))
			<-ctx.Done()
			time.Sleep(d.ackWait + time.Second)
		}
		return res
	}
}

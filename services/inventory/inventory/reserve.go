package inventory

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/jackc/pgx/v5/pgconn"

	"loudly/pkg/consumer"
	"loudly/pkg/events"
	"loudly/pkg/faults"
)

// Consumer is the inventory service's durable consumer name.
const Consumer = "inventory"

// reserver decides order.placed events.
type reserver struct {
	store   *store
	faults  *faults.Watcher // drill faults; nil in production code paths that have none
	hotSKU  string          // the SKU the stock-out drill empties
	ackWait time.Duration   // the consumer's ack wait, which the ack-timeout drill overstays
}

var errInjectedOutage = errors.New("database unavailable (drill fault db-outage)")

// handle returns the outcome of one order.placed event; the runner settles and records it.
func (r *reserver) handle(ctx context.Context, m *consumer.Message) consumer.Outcome {
	if m.Event.Type != events.TypeOrderPlaced {
		return consumer.Invalid(events.ReasonUnknownType, errors.New("inventory only decides order.placed, got "+m.Event.Type))
	}
	var order events.OrderPlaced
	if err := m.Event.DecodeData(&order); err != nil {
		return consumer.Invalid(events.ReasonMalformed, err)
	}
	if r.faults.Hit(faults.SilentSkip) {
		// The original outage, on purpose: claim success, do nothing, say nothing more.
		return consumer.Applied("reserved")
	}
	span := trace.SpanFromContext(ctx)
	if r.faults.Hit(faults.DBOutage) {
		span.SetAttributes(faults.Attr(faults.DBOutage))
		return consumer.Retry("db_unavailable", errInjectedOutage)
	}
	var opts reserveOptions
	if f, ok := r.faults.Get(faults.DBLatency); ok {
		span.SetAttributes(faults.Attr(faults.DBLatency))
		opts.latency = time.Duration(f.Intensity * float64(time.Second))
	}
	if r.faults.Hit(faults.StockOut) {
		span.SetAttributes(faults.Attr(faults.StockOut))
		opts.emptySKU = r.hotSKU
	}
	d, err := r.store.reserve(ctx, m.Event, order, opts)
	if err == nil && !d.duplicate && r.faults.Hit(faults.AckTimeout) {
		// Committed, then stuck past the ack wait with no heartbeat: the broker redelivers,
		// and the idempotency record turns the redelivery into a duplicate.
		span.SetAttributes(faults.Attr(faults.AckTimeout))
		m.StopProgress()
		time.Sleep(r.ackWait + time.Second)
	}
	switch {
	case err != nil:
		return consumer.Retry(retryReason(ctx, err), err)
	case d.duplicate:
		return consumer.Duplicate("event_already_applied")
	case d.rejected:
		return consumer.Rejected(d.reason)
	}
	return consumer.Applied("reserved")
}

// retryReason names a transient failure for the decision counter.
func retryReason(ctx context.Context, err error) string {
	var pgErr *pgconn.PgError
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01"):
		return "db_conflict"
	default:
		return "db_unavailable"
	}
}

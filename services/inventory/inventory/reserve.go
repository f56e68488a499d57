package inventory

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"loudly/pkg/consumer"
	"loudly/services/events"
)

// Consumer is the inventory service's durable consumer name.
const Consumer = "inventory"

// reserver decides order.placed events.
type reserver struct {
	store *store
}

// handle returns the result of one order.placed event; the runner settles and records it.
func (r *reserver) handle(ctx context.Context, m *consumer.Message, order events.OrderPlaced) consumer.Result {
	d, err := r.store.reserve(ctx, m.Event, order)
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

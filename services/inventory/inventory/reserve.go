package inventory

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"loudly/pkg/consumer"
	"loudly/pkg/idempotency"
	"loudly/services/events"
)

// Consumer is the inventory service's durable consumer name.
const Consumer = "inventory"

// ReservationConcurrency is how many batches of order events are decided at once unless
// CONSUMER_CONCURRENCY says otherwise: every batch locks the same hot stock rows, so one
// is in its transaction while the next gathers, and more only queue on the rows (and on
// the CPU). At make bench's half rate, eight doubled the accept→settled median.
const ReservationConcurrency = 2

// reasonReserved is the reason of an order event whose every line was reserved.
const reasonReserved = "reserved"

// reserver decides order.placed events.
type reserver struct {
	store *store
}

// decide returns the result of each order.placed event of a batch, decided in one
// transaction; the runner settles and records each. A failed transaction fails the batch
// (the runner then decides each event on its own); an event decided alone gets its retry
// reason.
func (r *reserver) decide(ctx context.Context, items []consumer.Item[events.OrderPlaced]) ([]consumer.Result, error) {
	reqs := make([]request, len(items))
	for i, it := range items {
		reqs[i] = request{ctx: it.Context(), event: it.Event, order: it.Payload}
	}
	ds, err := r.store.reserve(ctx, reqs)
	if err != nil {
		if len(items) > 1 {
			return nil, err
		}
		return []consumer.Result{consumer.Retry(retryReason(ctx, err), err)}, nil
	}
	out := make([]consumer.Result, len(ds))
	for i, d := range ds {
		switch {
		case d.duplicate:
			out[i] = consumer.Duplicate(idempotency.ReasonSeen)
		case d.rejected:
			out[i] = consumer.Rejected(d.reason)
		default:
			out[i] = consumer.Applied(reasonReserved)
		}
	}
	return out, nil
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

package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"loudly/pkg/consumer"
	"loudly/pkg/deadletter"
	"loudly/pkg/idempotency"
	"loudly/services/events"
)

// SettlementMaxAckPending is how many result events the settlement consumer has in flight
// unless CONSUMER_MAX_ACK_PENDING says otherwise: its eight batches of up to 64 (they
// share no rows, so they run side by side) and as many gathering behind them. At the
// default of 256, at most four batches could fill, and at saturation on 2 cores the
// settlement fell behind the accepts (median result→settled 1.5 s; 0.4 s with 1024,
// settled/s 99% of accepted/s instead of 97%, two make bench runs each).
const SettlementMaxAckPending = 1024

// settler turns inventory's results into final order statuses.
type settler struct {
	store   *store
	settled metric.Int64Counter
	latency metric.Float64Histogram
}

func newSettler(s *store, m metric.Meter) (*settler, error) {
	settled, err := m.Int64Counter("loudly.orders.settled", metric.WithUnit("{order}"),
		metric.WithDescription("Orders that reached a final status, by status."))
	if err != nil {
		return nil, err
	}
	latency, err := m.Float64Histogram("loudly.order.settlement.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from accepting an order to its final status."),
		metric.WithExplicitBucketBoundaries(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
	if err != nil {
		return nil, err
	}
	return &settler{store: s, settled: settled, latency: latency}, nil
}

// settle applies a batch of inventory.reserved / inventory.rejected events, in one
// transaction; the runner settles and records each result.
func (s *settler) settle(ctx context.Context, items []consumer.Item[events.InventoryResult]) ([]consumer.Result, error) {
	reqs := make([]settleRequest, len(items))
	for i, it := range items {
		reqs[i] = settleRequest{eventID: it.Event.ID, orderID: it.Event.Key, status: StatusConfirmed}
		if it.Event.Type == events.TypeInventoryRejected {
			reqs[i].status, reqs[i].reason = StatusRejected, it.Payload.Reason
		}
	}
	res, err := s.store.settle(ctx, reqs)
	if err != nil {
		if len(items) > 1 {
			return nil, err // the runner decides each event again on its own
		}
		return []consumer.Result{consumer.Retry("db_error", err)}, nil
	}
	out := make([]consumer.Result, len(res))
	for i, r := range res {
		status := reqs[i].status
		switch {
		case r.unknown:
			// A result for an order this service never accepted: the contract between the
			// two services is broken somewhere, and the letter keeps the evidence.
			out[i] = consumer.Invalid("unknown_order", fmt.Errorf("%w: %s", errUnknownOrder, reqs[i].orderID))
		case r.final:
			out[i] = consumer.Duplicate("already_settled")
		case r.duplicate:
			out[i] = consumer.Duplicate(idempotency.ReasonSeen)
		default:
			ictx := items[i].Context()
			s.settled.Add(ictx, 1, metric.WithAttributes(attribute.String("status", status)))
			s.latency.Record(ictx, r.age.Seconds(), metric.WithAttributes(attribute.String("status", status)))
			out[i] = consumer.Applied("order_" + status)
		}
	}
	return out, nil
}

// handleDeadLetter fails the order whose order.placed event inventory gave up on, so the
// customer gets an answer and the order stops counting as in flight. Letters that are not
// about one of our orders (poison published straight to the subject) have nothing to fail.
func (s *settler) handleDeadLetter(ctx context.Context, m *consumer.Message) consumer.Result {
	orderID, ok := placedOrderID(m.Data)
	if !ok {
		return consumer.Rejected("not_an_order")
	}
	reason := "dead_lettered: " + m.Header.Get(deadletter.HeaderReason)
	ok, err := s.store.fail(ctx, orderID, reason)
	switch {
	case errors.Is(err, errUnknownOrder):
		// Poison that happens to look like an order event: no order of ours to answer.
		return consumer.Rejected("unknown_order").WithKey(orderID)
	case err != nil:
		return consumer.Retry("db_error", err).WithKey(orderID)
	case !ok:
		return consumer.Duplicate("not_pending").WithKey(orderID)
	}
	s.settled.Add(ctx, 1, metric.WithAttributes(attribute.String("status", StatusFailed)))
	return consumer.Applied("order_failed").WithKey(orderID)
}

// placedOrderID reads the order id of a dead-lettered order.placed event. It reads
// loosely on purpose: a letter is often there because its event is not valid (an unknown
// version, a bad field), and the order it is about must still get an answer. An id that
// is no UUID, or another event type, is not one of our orders.
func placedOrderID(data []byte) (string, bool) {
	var loose struct {
		Type string `json:"type"`
		Key  string `json:"key"`
	}
	if json.Unmarshal(data, &loose) != nil || loose.Type != events.TypeOrderPlaced {
		return "", false
	}
	if _, err := uuid.Parse(loose.Key); err != nil {
		return "", false
	}
	return loose.Key, true
}

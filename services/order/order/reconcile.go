package order

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"loudly/pkg/telemetry"
)

// reconciler checks the business result, not the infrastructure: it asks the database how
// many orders are still pending past the settlement deadline. A consumer that acks events
// it never applied keeps every consumer metric green; it cannot keep this number at zero.
type reconciler struct {
	store    *store
	tel      *telemetry.Telemetry
	interval time.Duration
	deadline time.Duration

	count     atomic.Int64
	oldestAge atomic.Int64 // nanoseconds
}

func newReconciler(s *store, tel *telemetry.Telemetry, interval, deadline time.Duration) (*reconciler, error) {
	r := &reconciler{store: s, tel: tel, interval: interval, deadline: deadline}
	m := tel.Meter()
	count, err := m.Int64ObservableGauge("loudly.orders.unsettled", metric.WithUnit("{order}"),
		metric.WithDescription("Orders still pending past the settlement deadline, as of the last reconciliation."))
	if err != nil {
		return nil, err
	}
	oldest, err := m.Float64ObservableGauge("loudly.orders.unsettled.oldest.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest order pending past the settlement deadline; 0 when none."))
	if err != nil {
		return nil, err
	}
	deadlineG, err := m.Float64ObservableGauge("loudly.orders.settlement.deadline", metric.WithUnit("s"),
		metric.WithDescription("The configured settlement deadline the reconciler measures against."))
	if err != nil {
		return nil, err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(count, r.count.Load())
		o.ObserveFloat64(oldest, time.Duration(r.oldestAge.Load()).Seconds())
		o.ObserveFloat64(deadlineG, deadline.Seconds())
		return nil
	}, count, oldest, deadlineG)
	return r, err
}

// Run reconciles every interval until ctx is cancelled.
func (r *reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		r.reconcile(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (r *reconciler) reconcile(ctx context.Context) {
	ctx, span := r.tel.Tracer().Start(ctx, "reconcile orders")
	defer span.End()
	n, age, oldestID, err := r.store.unsettled(ctx, r.deadline)
	if err != nil {
		if ctx.Err() == nil {
			r.tel.Decisions.Record(ctx, telemetry.Decision{Stage: telemetry.StageReconcile, Outcome: telemetry.Retry,
				Reason: "db_error", Err: err})
		}
		return
	}
	r.count.Store(n)
	r.oldestAge.Store(int64(age))
	if n > 0 {
		// Retry: the business result is missing, and the reconciler looks again next round.
		r.tel.Decisions.Record(ctx, telemetry.Decision{Stage: telemetry.StageReconcile, Outcome: telemetry.Retry,
			Reason: "pending_past_deadline", Key: oldestID, KeyName: KeyName,
			Attrs: []slog.Attr{slog.Int64("unsettled", n), slog.Duration("oldest_age", age), slog.Duration("deadline", r.deadline)}})
	}
}

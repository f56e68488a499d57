package inventory

import (
	"context"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/consumer"
	"loudly/pkg/faults"
	"loudly/services/drill"
)

// wireDrills attaches the inventory service's drill faults, every one of them from outside
// the business code, in this one place: the drills' consumer middleware around the
// reservation handler (silent-skip, db-outage, ack-timeout), their transaction seam at the
// store's first batch (db-latency), and the one fault only inventory has, stock-out, on
// the stock just read. With drills off (d nil) every piece is a no-op.
func wireDrills(d *drill.Drills, st *store, hotSKU string, cfg consumer.Config) []consumer.Middleware {
	opened, read := st.opened, st.stockRead
	st.opened = func(ctx context.Context, n int, b *pgx.Batch) {
		opened(ctx, n, b)
		d.Latency(ctx, n, b)
	}
	st.stockRead = func(ctx context.Context, available map[string]int) {
		read(ctx, available)
		if _, hot := available[hotSKU]; hot && d.Hit(drill.StockOut) {
			trace.SpanFromContext(ctx).SetAttributes(faults.Attr(drill.StockOut))
			available[hotSKU] = 0
		}
	}
	return d.Consumer(reasonReserved, cfg.AckWait)
}

package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// stages says where a phase's accept→settled time went, from the timestamps both services
// keep: per order, its acceptance (orders.created_at), the order relay's claim of its
// order.placed row (orders.outbox.sent_at), inventory's decision
// (inventory.reservations.decided_at), the inventory relay's claim of the result
// (inventory.outbox.sent_at) and the settlement (orders.settled_at). Each is the start
// of the transaction that wrote it, so a stage is the time from one transaction's start to
// the next one's. It gives the 50th, 90th and 99th percentile of each stage, and with
// BENCH_TIMELINE set also how many orders passed each point in every second of the phase
// (a stage that caps the pipeline shows as the column where the counts drop). The
// percentiles leave out the orders accepted within warmup of the first one, as the
// phase's p50 and p99 do.
func stages(ctx context.Context, dsn string, warmup time.Duration) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var b strings.Builder
	if os.Getenv("BENCH_TIMELINE") != "" {
		rows, err := conn.Query(ctx, `WITH t0 AS (SELECT min(created_at) t FROM orders.orders),
		s AS (
			SELECT 'accepted' st, floor(extract(epoch FROM created_at - t0.t))::int sec FROM orders.orders, t0
			UNION ALL SELECT 'o_pub', floor(extract(epoch FROM sent_at - t0.t))::int FROM orders.outbox, t0 WHERE sent_at IS NOT NULL
			UNION ALL SELECT 'decided', floor(extract(epoch FROM decided_at - t0.t))::int FROM inventory.reservations, t0
			UNION ALL SELECT 'i_pub', floor(extract(epoch FROM sent_at - t0.t))::int FROM inventory.outbox, t0 WHERE sent_at IS NOT NULL
			UNION ALL SELECT 'settled', floor(extract(epoch FROM settled_at - t0.t))::int FROM orders.orders, t0 WHERE settled_at IS NOT NULL)
		SELECT sec, count(*) FILTER (WHERE st = 'accepted'), count(*) FILTER (WHERE st = 'o_pub'), count(*) FILTER (WHERE st = 'decided'),
			count(*) FILTER (WHERE st = 'i_pub'), count(*) FILTER (WHERE st = 'settled'),
			coalesce((SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM o.settled_at - o.created_at) * 1000)
				FROM orders.orders o, t0 WHERE floor(extract(epoch FROM o.created_at - t0.t))::int = s.sec), 0)
		FROM s GROUP BY sec ORDER BY sec`)
		if err != nil {
			return "", err
		}
		b.WriteString("  second  accepted  order_relay  decided  inventory_relay  settled  p99_ms(accepted then)\n")
		var sec, a, op, d, ip, st int
		var p99 float64
		if _, err := pgx.ForEachRow(rows, []any{&sec, &a, &op, &d, &ip, &st, &p99}, func() error {
			fmt.Fprintf(&b, "  %6d  %8d  %11d  %7d  %15d  %7d  %8.1f\n", sec, a, op, d, ip, st, p99)
			return nil
		}); err != nil {
			return "", err
		}
	}
	rows, err := conn.Query(ctx, `WITH j AS (
		SELECT extract(epoch FROM oo.sent_at - o.created_at) * 1000 a, extract(epoch FROM r.decided_at - oo.sent_at) * 1000 b,
			extract(epoch FROM io.sent_at - r.decided_at) * 1000 c, extract(epoch FROM o.settled_at - io.sent_at) * 1000 d,
			extract(epoch FROM o.settled_at - o.created_at) * 1000 e
		FROM inventory.reservations r JOIN orders.orders o ON o.id = r.order_id
			AND o.created_at >= (SELECT min(created_at) FROM orders.orders) + make_interval(secs => $1)
		JOIN orders.outbox oo ON oo.event_id = r.event_id JOIN inventory.outbox io ON io.event_id = r.result_event_id)
	SELECT p, percentile_cont(p) WITHIN GROUP (ORDER BY a), percentile_cont(p) WITHIN GROUP (ORDER BY b),
		percentile_cont(p) WITHIN GROUP (ORDER BY c), percentile_cont(p) WITHIN GROUP (ORDER BY d), percentile_cont(p) WITHIN GROUP (ORDER BY e)
	FROM j, unnest(ARRAY[0.5, 0.9, 0.99]) p GROUP BY p ORDER BY p`, warmup.Seconds())
	if err != nil {
		return "", err
	}
	b.WriteString("  ms    accepted→order_relay  →decided  →inventory_relay  →settled  total\n")
	var p, x1, x2, x3, x4, x5 float64
	if _, err := pgx.ForEachRow(rows, []any{&p, &x1, &x2, &x3, &x4, &x5}, func() error {
		fmt.Fprintf(&b, "  p%-4.0f %20.1f  %8.1f  %16.1f  %8.1f  %5.1f\n", p*100, x1, x2, x3, x4, x5)
		return nil
	}); err != nil {
		return "", err
	}
	return b.String(), nil
}

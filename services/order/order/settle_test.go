package order

import (
	"context"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/internal/testenv"
	"loudly/pkg/postgres"
)

// One batch of result events with every case the settlement store tells apart: a result
// applied, the same event twice in the batch, a second result for an order settled
// earlier in the batch, an event applied in an earlier batch, a result for an order
// already settled by another event, a late result for a failed order (it wins), and a
// result for an order this service never took (reported, and its id not kept, so a
// redriven copy is judged again).
func TestSettle_MixedBatch(t *testing.T) {
	r := startOrder(t)
	ctx := context.Background()
	st := &store{pool: r.svc.Pool, processed: r.svc.Idempotency()}
	order := func(status string) string {
		t.Helper()
		id := uuid.NewString()
		if _, err := r.db.Exec(ctx, `INSERT INTO orders.orders (id, customer_id, lines, status, created_at)
			VALUES ($1, 'c', '[]', $2, now() - interval '2 seconds')`, id, status); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a, b, settled, failed, earlier := order("pending"), order("pending"), order("pending"), order("failed"), order("pending")
	unknown := uuid.NewString()
	ev := func() string { return uuid.NewString() }

	// An earlier batch settles `settled` and applies event e0 to `earlier`.
	e0, eSettled := ev(), ev()
	if _, err := st.settle(ctx, []settleRequest{
		{eventID: e0, orderID: earlier, status: StatusConfirmed},
		{eventID: eSettled, orderID: settled, status: StatusRejected, reason: "insufficient_stock"},
	}); err != nil {
		t.Fatal(err)
	}

	eA, eB1, eB2, eLate, eFailed, eUnknown := ev(), ev(), ev(), ev(), ev(), ev()
	reqs := []settleRequest{
		{eventID: eA, orderID: a, status: StatusConfirmed},                        // 0 applied
		{eventID: eA, orderID: a, status: StatusConfirmed},                        // 1 same event again
		{eventID: eB1, orderID: b, status: StatusRejected, reason: "unknown_sku"}, // 2 applied
		{eventID: eB2, orderID: b, status: StatusConfirmed},                       // 3 second result for b
		{eventID: e0, orderID: earlier, status: StatusConfirmed},                  // 4 applied before
		{eventID: eLate, orderID: settled, status: StatusConfirmed},               // 5 order settled already
		{eventID: eFailed, orderID: failed, status: StatusConfirmed},              // 6 a failed order settles
		{eventID: eUnknown, orderID: unknown, status: StatusConfirmed},            // 7 no such order
	}
	got, err := st.settle(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	// final: a new event for an order already final (Duplicate already_settled), not one
	// seen before (Duplicate event_already_applied).
	type want struct{ duplicate, final, unknown, applied bool }
	wants := []want{{applied: true}, {duplicate: true}, {applied: true}, {duplicate: true, final: true}, {duplicate: true},
		{duplicate: true, final: true}, {applied: true}, {unknown: true}}
	if len(got) != len(wants) {
		t.Fatalf("%d results for %d events", len(got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		applied := !g.duplicate && !g.unknown
		if g.duplicate != w.duplicate || g.final != w.final || g.unknown != w.unknown || applied != w.applied {
			t.Errorf("event %d: duplicate=%t final=%t unknown=%t, want %+v", i, g.duplicate, g.final, g.unknown, w)
		}
		if applied && (g.age < 2*time.Second || g.age > time.Minute) {
			t.Errorf("event %d: age %s, want the order's age (about 2s)", i, g.age)
		}
	}

	status := func(id string) (s, reason string) {
		t.Helper()
		var rs *string
		if err := r.db.QueryRow(ctx, `SELECT status, reason FROM orders.orders WHERE id = $1`, id).Scan(&s, &rs); err != nil {
			t.Fatal(err)
		}
		return s, deref(rs)
	}
	for id, w := range map[string][2]string{
		a: {StatusConfirmed, ""}, b: {StatusRejected, "unknown_sku"}, settled: {StatusRejected, "insufficient_stock"},
		failed: {StatusConfirmed, ""}, earlier: {StatusConfirmed, ""},
	} {
		if s, reason := status(id); s != w[0] || reason != w[1] {
			t.Errorf("order %s: %s %q, want %s %q", id, s, reason, w[0], w[1])
		}
	}
	// One history row per settlement, naming its event.
	var history int
	if err := r.db.QueryRow(ctx, `SELECT count(*) FROM orders.order_history WHERE event_id = ANY($1::uuid[])`,
		[]string{e0, eSettled, eA, eB1, eB2, eLate, eFailed, eUnknown}).Scan(&history); err != nil {
		t.Fatal(err)
	}
	if history != 5 {
		t.Errorf("%d history rows for the settling events, want 5 (e0, eSettled, eA, eB1, eFailed)", history)
	}
	var kept []string
	rows, err := r.db.Query(ctx, `SELECT event_id::text FROM orders.processed_events WHERE event_id = ANY($1::uuid[]) ORDER BY 1`,
		[]string{eA, eB1, eB2, eLate, eFailed, eUnknown})
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, id)
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(kept) != 5 {
		t.Errorf("processed events kept: %v; want every event of the batch but the unknown order's (5)", kept)
	}
	for _, id := range kept {
		if id == eUnknown {
			t.Error("the unknown order's event id was kept: a redriven copy would be a duplicate")
		}
	}

	// The same batch again is all duplicates but the unknown order's, judged again.
	again, err := st.settle(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range again {
		if want := i == 7; g.unknown != want || (!want && !g.duplicate) {
			t.Errorf("redelivered event %d: duplicate=%t unknown=%t", i, g.duplicate, g.unknown)
		}
	}
}

// The settlement's statements probe orders by key whatever the table's size: checked on
// an empty table, where a plan made for the table's size reads all of it, which is the
// plan a cached one would keep.
func TestSettle_PlansProbeOrders(t *testing.T) {
	r := startOrder(t)
	for name, c := range map[string]struct {
		sql  string
		args []string
	}{
		"lock orders":   {lockOrdersSQL, []string{"'{}'::uuid[]"}},
		"settle orders": {settleOrdersSQL, []string{"'{}'::uuid[]", "'{}'::text[]", "'{}'::text[]"}},
	} {
		plan, err := postgres.ExplainIndexPlans(context.Background(), r.svc.Pool, c.sql, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if whole := testenv.WholeReads(t, plan); len(whole) > 0 {
			t.Errorf("%s reads whole relations: %v\n%s", name, whole, plan)
		}
	}
}

// A database made before pkg/idempotency owned orders.processed_events (the service
// declared it, keyed by an order_id uuid) keeps its record through the upgrade: the table
// takes the record's shape and an event applied before is still a duplicate.
func TestSettle_KeepsTheRecordOfADatabaseMadeBefore(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	orderID, eventID := uuid.NewString(), uuid.NewString()
	// The database as the service left it: its first migration applied, the table of the
	// time with one event applied, the order it settled.
	first, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	onlyFirst := fstest.MapFS{}
	body, err := fs.ReadFile(first, "00001_orders.sql")
	if err != nil {
		t.Fatal(err)
	}
	onlyFirst["00001_orders.sql"] = &fstest.MapFile{Data: body}
	if err := postgres.Migrate(ctx, pool, "orders", onlyFirst); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE orders.processed_events (
			event_id uuid PRIMARY KEY, order_id uuid NOT NULL, processed_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO orders.orders (id, customer_id, lines, status, settled_at) VALUES ('`+orderID+`', 'c', '[]', 'confirmed', now());
		INSERT INTO orders.processed_events (event_id, order_id) VALUES ('`+eventID+`', '`+orderID+`')`); err != nil {
		t.Fatal(err)
	}

	r := start(t, testConfig(t, dsn, testenv.NATS(t)))
	var keyType, key string
	if err := r.db.QueryRow(ctx, `SELECT data_type FROM information_schema.columns
		WHERE table_schema = 'orders' AND table_name = 'processed_events' AND column_name = 'key'`).Scan(&keyType); err != nil || keyType != "text" {
		t.Fatalf("orders.processed_events.key is %q (%v), want text", keyType, err)
	}
	if err := r.db.QueryRow(ctx, `SELECT key FROM orders.processed_events WHERE event_id = $1`, eventID).Scan(&key); err != nil || key != orderID {
		t.Fatalf("the event applied before the upgrade: key %q (%v), want %s", key, err, orderID)
	}
	st := &store{pool: r.svc.Pool, processed: r.svc.Idempotency()}
	got, err := st.settle(ctx, []settleRequest{{eventID: eventID, orderID: orderID, status: StatusConfirmed}})
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].duplicate || got[0].final {
		t.Errorf("an event applied before the upgrade, redelivered: %+v, want a duplicate seen by the record", got[0])
	}
}

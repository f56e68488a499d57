package inventory

import (
	"context"
	"io/fs"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/internal/testenv"
	"loudly/pkg/outbox"
	"loudly/pkg/postgres"
	"loudly/services/events"
)

// Batches decided concurrently keep the business rule: stock never goes negative,
// LIMITED-001 (100 in stock) is never oversold, an order takes all its lines or none, and
// an event in two batches — or twice in one — is applied once.
func TestReserve_ConcurrentBatchesKeepTheRule(t *testing.T) {
	dsn := testenv.Postgres(t)
	h := newHarness(t, config(t, dsn, testenv.NATS(t), nil), dsn)
	ob, err := outbox.New("inventory.outbox", h.svc.Pool, h.tel.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(h.svc.Pool, ob, h.svc.Idempotency())
	bookBefore := h.available(t, "BOOK-001")

	const orders, workers, batch = 200, 4, 25
	reqs := make([]request, orders)
	for i := range reqs {
		order := events.OrderPlaced{CustomerID: "c", Lines: []events.Line{{SKU: "LIMITED-001", Quantity: 1}, {SKU: "BOOK-001", Quantity: 1}}}
		env, _, err := events.OrderPlacedEvent.New(newUUID(t), order, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		reqs[i] = request{ctx: context.Background(), event: env, order: order}
	}
	// Each worker takes every workers-th batch; one event also rides in a second worker's
	// batch, and one batch carries an event twice.
	batches := make([][]request, workers)
	for i := 0; i < orders; i += batch {
		w := (i / batch) % workers
		batches[w] = append(batches[w], reqs[i:i+batch]...)
	}
	batches[1] = append(batches[1], reqs[0])
	batches[2] = append(batches[2], reqs[len(reqs)-1])

	var mu sync.Mutex
	decided := map[string][]decision{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			own := batches[w]
			for i := 0; i < len(own); i += batch {
				part := own[i:min(i+batch, len(own))]
				for attempt := 0; ; attempt++ {
					ds, err := st.reserve(context.Background(), part)
					if err != nil {
						if attempt < 5 {
							continue // a failed batch is decided again, as the runner would
						}
						t.Errorf("batch failed 6 times: %v", err)
						return
					}
					mu.Lock()
					for j, d := range ds {
						decided[part[j].event.ID] = append(decided[part[j].event.ID], d)
					}
					mu.Unlock()
					break
				}
			}
		})
	}
	wg.Wait()

	reserved, rejected, duplicates := 0, 0, 0
	for id, ds := range decided {
		applied := 0
		for _, d := range ds {
			switch {
			case d.duplicate:
				duplicates++
			case d.rejected:
				rejected++
				applied++
			default:
				reserved++
				applied++
			}
		}
		if applied != 1 {
			t.Errorf("event %s was decided %d times (%+v), want once", id, applied, ds)
		}
	}
	if reserved != 100 || rejected != orders-100 || duplicates != 2 {
		t.Errorf("reserved %d, rejected %d, duplicates %d; want 100, %d, 2", reserved, rejected, duplicates, orders-100)
	}
	var avail, res int
	if err := h.db.QueryRow(context.Background(), `SELECT available, reserved FROM inventory.stock WHERE sku = 'LIMITED-001'`).Scan(&avail, &res); err != nil {
		t.Fatal(err)
	}
	if avail != 0 || res != 100 {
		t.Errorf("LIMITED-001 available %d reserved %d, want 0 and 100", avail, res)
	}
	if got := bookBefore - h.available(t, "BOOK-001"); got != 100 {
		t.Errorf("BOOK-001 went down by %d, want 100: a rejected order took one of its lines", got)
	}
	var rows, results int
	if err := h.db.QueryRow(context.Background(), `SELECT count(*), count(result_event_id) FROM inventory.reservations`).Scan(&rows, &results); err != nil {
		t.Fatal(err)
	}
	if rows != orders || results != orders {
		t.Errorf("%d reservations with %d result events, want %d of each", rows, results, orders)
	}
}

// A batch of one is the simple case: the same decision, the same records.
func TestReserve_ABatchOfOne(t *testing.T) {
	dsn := testenv.Postgres(t)
	h := newHarness(t, config(t, dsn, testenv.NATS(t), map[string]string{"CONSUMER_BATCH_SIZE": "1"}), dsn)
	h.run(t)
	if h.svc.Config.Consumer.BatchSize != 1 {
		t.Fatalf("CONSUMER_BATCH_SIZE=1 gave batches of %d", h.svc.Config.Consumer.BatchSize)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, h.publish(t, events.Line{SKU: "MUG-001", Quantity: i + 1}).ID)
	}
	for _, id := range ids {
		if d := h.waitDecision(t, id, "applied"); d["reason"] != "reserved" {
			t.Errorf("decision %v", d)
		}
	}
	batches := 0
	for _, s := range h.tel.Spans() {
		if s.Name() == "process batch "+Consumer {
			batches++
			for _, a := range s.Attributes() {
				if a.Key == "messaging.batch.message_count" && a.Value.AsInt64() != 1 {
					t.Errorf("a batch of %d with CONSUMER_BATCH_SIZE=1", a.Value.AsInt64())
				}
			}
		}
	}
	if batches != len(ids) {
		t.Errorf("%d batch spans for %d events", batches, len(ids))
	}
}

// A batch whose transaction fails at its writes (here a stock update that would take a
// row below zero, the table's check, because the stock read was wrong) leaves nothing
// behind: no event claimed, no stock taken, no reservation, no result event; the
// connection comes back to the pool usable; and deciding the batch again gives the right
// results.
func TestReserve_AFailedWriteLeavesNothing(t *testing.T) {
	dsn := testenv.Postgres(t)
	h := newHarness(t, config(t, dsn, testenv.NATS(t), map[string]string{"DB_MAX_CONNS": "2"}), dsn)
	ob, err := outbox.New("inventory.outbox", h.svc.Pool, h.tel.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(h.svc.Pool, ob, h.svc.Idempotency())
	ctx := context.Background()
	if _, err := h.db.Exec(ctx, `UPDATE inventory.stock SET available = 1 WHERE sku = 'MUG-001'`); err != nil {
		t.Fatal(err)
	}
	var reqs []request
	var ids []string
	for range 3 {
		order := events.OrderPlaced{CustomerID: "c", Lines: []events.Line{{SKU: "MUG-001", Quantity: 1}}}
		env, _, err := events.OrderPlacedEvent.New(newUUID(t), order, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, request{ctx: ctx, event: env, order: order})
		ids = append(ids, env.ID)
	}
	wrong := true
	st.stockRead = func(_ context.Context, available map[string]int) {
		if wrong {
			available["MUG-001"] = 10 // all three fit, by this read
		}
	}
	if _, err := st.reserve(ctx, reqs); err == nil {
		t.Fatal("reserve succeeded although its stock update broke the table's check")
	}
	var claimed, reservations, results, mug int
	if err := h.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM inventory.processed_events WHERE event_id = ANY($1::uuid[])),
			(SELECT count(*) FROM inventory.reservations), (SELECT count(*) FROM inventory.outbox),
			(SELECT available FROM inventory.stock WHERE sku = 'MUG-001')`, ids).Scan(&claimed, &reservations, &results, &mug); err != nil {
		t.Fatal(err)
	}
	if claimed != 0 || reservations != 0 || results != 0 || mug != 1 {
		t.Fatalf("after the failed batch: %d events claimed, %d reservations, %d result events, MUG-001 %d; want 0, 0, 0, 1",
			claimed, reservations, results, mug)
	}
	// Decided again with a true read (the pool's two connections both still work): the
	// first order takes the last mug, the others are refused; a third time, all three
	// are duplicates.
	wrong = false
	ds, err := st.reserve(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].rejected || ds[0].duplicate || !ds[1].rejected || ds[1].reason != ReasonInsufficientStock || !ds[2].rejected {
		t.Fatalf("decided again: %+v, want the first reserved and the others rejected for insufficient stock", ds)
	}
	ds, err = st.reserve(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if got := [3]bool{ds[0].duplicate, ds[1].duplicate, ds[2].duplicate}; got != [3]bool{true, true, true} {
		t.Fatalf("a third time: duplicates %v, want all", got)
	}
	if h.available(t, "MUG-001") != 0 {
		t.Errorf("MUG-001 has %d left, want 0 (taken once)", h.available(t, "MUG-001"))
	}
}

// A batch's lookups probe stock by key whatever its size: checked where a plan made for the
// table's size reads all of it, which is the plan a cached one would keep.
func TestReserve_PlansProbeByKey(t *testing.T) {
	dsn := testenv.Postgres(t)
	h := newHarness(t, config(t, dsn, testenv.NATS(t), nil), dsn)
	for name, c := range map[string]struct {
		sql  string
		args []string
	}{
		"lock stock":      {lockStockSQL, []string{"'{BOOK-001}'::text[]"}},
		"take from stock": {takeStockSQL, []string{"'{BOOK-001}'::text[]", "'{1}'::int[]"}},
	} {
		plan, err := postgres.ExplainIndexPlans(context.Background(), h.svc.Pool, c.sql, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if whole := testenv.WholeReads(t, plan); len(whole) > 0 {
			t.Errorf("%s reads whole relations: %v\n%s", name, whole, plan)
		}
	}
}

// A database made before pkg/idempotency decided inventory's duplicates (reservations did)
// keeps its decisions through the upgrade: every event decided before is in the record,
// and a late redelivery of one is still a duplicate, with nothing reserved again.
func TestReserve_KeepsTheDecisionsOfADatabaseMadeBefore(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	all, err := fs.Sub(migrations, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	before := fstest.MapFS{}
	for _, name := range []string{"00001_stock.sql", "00004_reservation_result.sql"} {
		body, err := fs.ReadFile(all, name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: body}
	}
	if err := postgres.Migrate(ctx, pool, "inventory", before); err != nil {
		t.Fatal(err)
	}
	order := events.OrderPlaced{CustomerID: "c", Lines: []events.Line{{SKU: "MUG-001", Quantity: 1}}}
	env, _, err := events.OrderPlacedEvent.New(newUUID(t), order, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO inventory.reservations (event_id, order_id, outcome, lines) VALUES ($1, $2, 'reserved', '[]')`,
		env.ID, env.Key); err != nil {
		t.Fatal(err)
	}

	h := newHarness(t, config(t, dsn, testenv.NATS(t), nil), dsn)
	var key string
	if err := h.db.QueryRow(ctx, `SELECT key FROM inventory.processed_events WHERE event_id = $1`, env.ID).Scan(&key); err != nil || key != env.Key {
		t.Fatalf("the event decided before the upgrade is not in the record: key %q (%v)", key, err)
	}
	ob, err := outbox.New("inventory.outbox", h.svc.Pool, h.tel.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	mug := h.available(t, "MUG-001")
	ds, err := newStore(h.svc.Pool, ob, h.svc.Idempotency()).reserve(ctx, []request{{ctx: ctx, event: env, order: order}})
	if err != nil {
		t.Fatal(err)
	}
	if !ds[0].duplicate || h.available(t, "MUG-001") != mug {
		t.Errorf("a late redelivery of an event decided before the upgrade: %+v, MUG-001 %d→%d; want a duplicate, unchanged",
			ds[0], mug, h.available(t, "MUG-001"))
	}
}

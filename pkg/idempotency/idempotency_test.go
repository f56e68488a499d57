package idempotency_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/internal/testenv"
	"loudly/pkg/idempotency"
	"loudly/pkg/postgres"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// table opens a fresh database and migrates a record in schema (twice: migrating again is
// harmless).
func table(t *testing.T, schema string) (*idempotency.Table, *pgxpool.Pool) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tbl, err := idempotency.New(schema)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := tbl.Migrate(context.Background(), pool); err != nil {
			t.Fatal(err)
		}
	}
	return tbl, pool
}

// record claims events in a transaction of its own, committed or rolled back, and returns
// each event's Seen.
func record(t *testing.T, pool *pgxpool.Pool, tbl *idempotency.Table, commit bool, events ...idempotency.Event) []bool {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	c, err := tbl.Record(ctx, tx, events...)
	if err != nil {
		t.Fatal(err)
	}
	if commit {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	seen := make([]bool, len(events))
	for i := range events {
		seen[i] = c.Seen(i)
	}
	return seen
}

func ev(key string) idempotency.Event { return idempotency.Event{ID: uuid.NewString(), Key: key} }

func TestClaim_SaysWhichEventsOfABatchWereProcessedBefore(t *testing.T) {
	tbl, pool := table(t, "payments")
	a, b, c := ev("pay-1"), ev("pay-2"), ev("pay-3")

	if got := record(t, pool, tbl, false, a, b); got[0] || got[1] {
		t.Fatalf("new events reported seen: %v", got)
	}
	// Rolled back with the change: nothing was recorded, so the events are new again.
	if got := record(t, pool, tbl, true, a, b); got[0] || got[1] {
		t.Fatalf("events whose first transaction rolled back reported seen (they would never be applied): %v", got)
	}
	// Committed: a redelivery is seen; a new event beside it is not; the same event twice
	// in one batch is new at most once, at its first position; the id's spelling does not
	// matter (upper case is the same UUID).
	upper := idempotency.Event{ID: strings.ToUpper(c.ID), Key: c.Key}
	got := record(t, pool, tbl, true, b, c, a, upper, c)
	if want := []bool{true, false, true, true, true}; !slices.Equal(got, want) {
		t.Fatalf("seen %v, want %v", got, want)
	}
	var n int
	var key string
	if err := pool.QueryRow(context.Background(), `SELECT count(*), max(key) FILTER (WHERE event_id = $1) FROM payments.processed_events`, c.ID).Scan(&n, &key); err != nil {
		t.Fatal(err)
	}
	if n != 3 || key != "pay-3" {
		t.Errorf("the record holds %d events (want 3) and %q as c's key (want pay-3)", n, key)
	}
	// A batch of one is the same call.
	if got := record(t, pool, tbl, true, c); !got[0] {
		t.Error("a redelivered event alone was not seen")
	}
}

// Claimed in the first batch of a pipelined transaction (postgres.Begin), as the
// reference services do: the answer is there when Begin returns, and the record commits
// with the writes of the last batch.
func TestClaim_InAPipelinedTransaction(t *testing.T) {
	tbl, pool := table(t, "shipping")
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE shipping.parcels (event_id uuid PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	old := ev("p-1")
	record(t, pool, tbl, true, old)
	events := []idempotency.Event{ev("p-2"), old, ev("p-3")}

	first := &pgx.Batch{}
	c := tbl.Claim(first, events)
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	tx, err := postgres.Begin(ctx, pool, first)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if got := c.New(); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("new positions %v, want [0 2]", got)
	}
	last := &pgx.Batch{}
	for _, i := range c.New() {
		last.Queue(`INSERT INTO shipping.parcels VALUES ($1)`, events[i].ID)
	}
	if err := tx.Commit(ctx, last); err != nil {
		t.Fatal(err)
	}
	if got := record(t, pool, tbl, false, events...); !slices.Equal(got, []bool{true, true, true}) {
		t.Errorf("after the commit the batch's events are seen %v, want all", got)
	}
}

// Two transactions claiming the same event: the second waits on the first (seen in
// pg_blocking_pids, not guessed from a sleep), then finds the event seen if the first
// committed, or takes it if the first rolled back.
func TestClaim_ConcurrentClaimsOfOneEventSerialise(t *testing.T) {
	for _, commit := range []bool{true, false} {
		name := map[bool]string{true: "the first commits", false: "the first rolls back"}[commit]
		t.Run(name, func(t *testing.T) {
			tbl, pool := table(t, "billing")
			ctx := context.Background()
			shared, other := ev("inv-1"), ev("inv-2")

			first, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Rollback(ctx)
			if c, err := tbl.Record(ctx, first, shared); err != nil || c.Seen(0) {
				t.Fatalf("first claim: seen %v, %v", c != nil && c.Seen(0), err)
			}
			var firstPID int
			if err := first.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&firstPID); err != nil {
				t.Fatal(err)
			}

			second, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer second.Release()
			var secondPID int
			if err := second.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&secondPID); err != nil {
				t.Fatal(err)
			}
			type answer struct {
				seen []bool
				err  error
			}
			done := make(chan answer, 1)
			go func() {
				tx, err := second.Begin(ctx)
				if err != nil {
					done <- answer{err: err}
					return
				}
				defer tx.Rollback(ctx)
				c, err := tbl.Record(ctx, tx, other, shared)
				if err != nil {
					done <- answer{err: err}
					return
				}
				done <- answer{seen: []bool{c.Seen(0), c.Seen(1)}, err: tx.Commit(ctx)}
			}()
			testenv.WaitFor(t, 10*time.Second, "the second claim to wait on the first transaction", func() bool {
				var blocked bool
				err := pool.QueryRow(ctx, `SELECT $2::int = ANY(pg_blocking_pids($1))`, secondPID, firstPID).Scan(&blocked)
				return err == nil && blocked
			})
			select {
			case a := <-done:
				t.Fatalf("the second claim answered while the first transaction was open: %+v", a)
			default:
			}
			if commit {
				err = first.Commit(ctx)
			} else {
				err = first.Rollback(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			a := <-done
			if a.err != nil {
				t.Fatal(a.err)
			}
			if want := []bool{false, commit}; !slices.Equal(a.seen, want) {
				t.Errorf("second claim seen %v, want %v", a.seen, want)
			}
		})
	}
}

// An event claimed and then judged invalid is forgotten in the same transaction, so a
// redriven copy is judged afresh; a position the claim found seen is someone else's
// record and stays.
func TestClaim_ForgetReleasesOnlyWhatThisClaimRecorded(t *testing.T) {
	tbl, pool := table(t, "refunds")
	ctx := context.Background()
	old, bad, good := ev("r-1"), ev("r-2"), ev("r-3")
	record(t, pool, tbl, true, old)

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	c, err := tbl.Record(ctx, tx, old, bad, good)
	if err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	c.Forget(b, 0, 1) // old was seen: not this claim's to forget
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := record(t, pool, tbl, false, old, bad, good); !slices.Equal(got, []bool{true, false, true}) {
		t.Errorf("after forgetting the invalid event: seen %v, want [true false true]", got)
	}
}

func TestClaim_RefusesBadInput(t *testing.T) {
	for _, s := range []string{"", "Payments", "x; DROP TABLE y", "a.b"} {
		if _, err := idempotency.New(s); err == nil {
			t.Errorf("New(%q) accepted", s)
		}
	}
	tbl, pool := table(t, "ledger")
	c := tbl.Claim(&pgx.Batch{}, []idempotency.Event{ev("k"), {ID: "not-a-uuid", Key: "k"}})
	if c.Err() == nil || !strings.Contains(c.Err().Error(), `"not-a-uuid" is not a UUID`) {
		t.Errorf("a claim of a non-UUID id: %v", c.Err())
	}
	tx, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tbl.Record(context.Background(), tx, idempotency.Event{ID: "nope"}); err == nil {
		t.Error("Record of a non-UUID id succeeded")
	}
}

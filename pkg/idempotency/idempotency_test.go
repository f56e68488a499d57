package idempotency_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/internal/testenv"
	"loudly/pkg/idempotency"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestTable_RemembersEachEventOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	// remember runs Remember in its own transaction, committed or rolled back.
	remember := func(t *testing.T, tbl *idempotency.Table, id, key string, commit bool) bool {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(context.Background())
		seen, err := tbl.Remember(ctx, tx, id, key)
		if err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return seen
	}

	t.Run("a table it creates, keyed by any string", func(t *testing.T) {
		tbl, err := idempotency.New("payments.processed_events", "")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // migrating twice is harmless
			if err := tbl.Migrate(ctx, pool); err != nil {
				t.Fatal(err)
			}
		}
		id := uuid.NewString()
		if remember(t, tbl, id, "pay-0001", false) {
			t.Error("a new event was reported seen")
		}
		if remember(t, tbl, id, "pay-0001", true) {
			t.Error("an event whose first transaction rolled back was reported seen: it would never be applied")
		}
		if !remember(t, tbl, id, "pay-0001", true) {
			t.Error("an event committed before was not reported seen: it would be applied twice")
		}
		if remember(t, tbl, uuid.NewString(), "pay-0001", true) {
			t.Error("another event about the same entity was reported seen")
		}
	})

	t.Run("an existing table with its own key column", func(t *testing.T) {
		if _, err := pool.Exec(ctx, `CREATE SCHEMA shop; CREATE TABLE shop.processed_events (
			event_id uuid PRIMARY KEY, entity_id uuid NOT NULL, processed_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			t.Fatal(err)
		}
		tbl, err := idempotency.New("shop.processed_events", "entity_id")
		if err != nil {
			t.Fatal(err)
		}
		id, entity := uuid.NewString(), uuid.NewString()
		if remember(t, tbl, id, entity, true) || !remember(t, tbl, id, entity, true) {
			t.Error("want unseen, then seen")
		}
		var got string
		if err := pool.QueryRow(ctx, `SELECT entity_id::text FROM shop.processed_events WHERE event_id = $1`, id).Scan(&got); err != nil || got != entity {
			t.Errorf("entity_id %q (%v), want %s", got, err, entity)
		}
	})

	t.Run("names that are not identifiers are refused", func(t *testing.T) {
		for _, c := range [][2]string{{"processed_events", ""}, {"x.y; DROP TABLE z", ""}, {"a.b", "k ey"}} {
			if _, err := idempotency.New(c[0], c[1]); err == nil {
				t.Errorf("New(%q, %q) accepted", c[0], c[1])
			}
		}
	})
}

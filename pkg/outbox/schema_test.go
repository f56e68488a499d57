package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/internal/testenv"
	"loudly/pkg/outbox"
	"loudly/pkg/telemetry/telemetrytest"
)

// olderTable is the outbox as the services' own migrations created it before the package
// owned it: without stream_seq, with their index names.
const olderTable = `CREATE SCHEMA legacy;
CREATE TABLE legacy.outbox (
    id              bigserial PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    subject         text        NOT NULL,
    payload         bytea       NOT NULL,
    headers         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz
);
CREATE INDEX outbox_due ON legacy.outbox (next_attempt_at, id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON legacy.outbox (sent_at) WHERE sent_at IS NOT NULL;
INSERT INTO legacy.outbox (event_id, subject, payload, headers) VALUES (gen_random_uuid(), 'orders.placed', '\x7b7d', '{}');`

func TestMigrate_OwnsTheTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tel := telemetrytest.New(t, "shop")

	t.Run("replicas starting together create it once, in a schema of its own", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				ob, err := outbox.New("fresh.outbox", pool, tel.Telemetry)
				if err == nil {
					err = ob.Migrate(ctx)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		ob, _ := outbox.New("fresh.outbox", pool, tel.Telemetry)
		if err := ob.Migrate(ctx); err != nil {
			t.Fatalf("migrating again: %v", err)
		}
		id := uuid.NewString()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := ob.Enqueue(ctx, tx, outbox.Message{EventID: id, Subject: "orders.placed", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if e, err := ob.Entries(ctx, []string{id}); err != nil || e[id].Subject != "orders.placed" {
			t.Fatalf("entries %v, error %v: the enqueued row is not readable", e, err)
		}
	})

	t.Run("a table made by the services' former migrations is kept and brought up to date", func(t *testing.T) {
		if _, err := pool.Exec(ctx, olderTable); err != nil {
			t.Fatal(err)
		}
		ob, _ := outbox.New("legacy.outbox", pool, tel.Telemetry)
		if err := ob.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		var rows, indexes int
		var hasSeq bool
		err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM legacy.outbox),
			(SELECT count(*) FROM pg_indexes WHERE schemaname = 'legacy' AND tablename = 'outbox'),
			EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'legacy' AND table_name = 'outbox' AND column_name = 'stream_seq')`).
			Scan(&rows, &indexes, &hasSeq)
		if err != nil {
			t.Fatal(err)
		}
		// The primary key, the event id's unique index, and the two of the relay.
		if rows != 1 || indexes != 4 || !hasSeq {
			t.Errorf("rows %d, indexes %d, stream_seq %v: want the row kept, 4 indexes (none doubled) and stream_seq added", rows, indexes, hasSeq)
		}
	})
}

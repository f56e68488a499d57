package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/internal/testenv"
	"loudly/pkg/postgres"
)

// A pipelined transaction commits what both its batches wrote, in two round trips; one
// whose statement fails leaves nothing, as does one closed without Commit; and the pool's
// one connection is usable after each.
func TestPipelined(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1 // a connection left inside a transaction would show in the next test step
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, `CREATE TABLE pipelined (k text PRIMARY KEY, n int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	// kept checks the pool still has the connection it had (pgxpool would drop one given
	// back inside a transaction, and the next query would open a new one).
	kept := func(t *testing.T, newConns int64) {
		t.Helper()
		if n := pool.Stat().NewConnsCount(); n != newConns {
			t.Errorf("the pool opened %d new connections, want none: the transaction was not ended on its connection", n-newConns)
		}
	}
	rows := func(t *testing.T) map[string]int {
		t.Helper()
		got := map[string]int{}
		r, err := pool.Query(ctx, `SELECT k, n FROM pipelined`)
		if err != nil {
			t.Fatal(err)
		}
		var k string
		var n int
		if _, err := pgx.ForEachRow(r, []any{&k, &n}, func() error { got[k] = n; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	t.Run("committed", func(t *testing.T) {
		first := &pgx.Batch{}
		first.Queue(`INSERT INTO pipelined VALUES ('a', 1)`)
		tx, err := postgres.Begin(ctx, pool, first)
		if err != nil {
			t.Fatal(err)
		}
		last := &pgx.Batch{}
		last.Queue(`UPDATE pipelined SET n = n + 1 WHERE k = 'a'`)
		last.Queue(`INSERT INTO pipelined VALUES ('b', 2)`)
		err = tx.Commit(ctx, last)
		tx.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := rows(t); got["a"] != 2 || got["b"] != 2 || len(got) != 2 {
			t.Errorf("rows = %v, want a=2 b=2", got)
		}
	})
	t.Run("a failed statement leaves nothing", func(t *testing.T) {
		conns := pool.Stat().NewConnsCount()
		tx, err := postgres.Begin(ctx, pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		last := &pgx.Batch{}
		last.Queue(`INSERT INTO pipelined VALUES ('c', 3)`)
		last.Queue(`INSERT INTO pipelined VALUES ('a', 9)`) // a unique violation
		last.Queue(`UPDATE pipelined SET n = 0`)
		if err := tx.Commit(ctx, last); err == nil {
			t.Fatal("Commit with a failing statement returned nil")
		}
		tx.Close()
		if got := rows(t); got["a"] != 2 || got["b"] != 2 || len(got) != 2 {
			t.Errorf("rows = %v after the failed transaction, want a=2 b=2 as before", got)
		}
		kept(t, conns)
	})
	t.Run("closed without Commit", func(t *testing.T) {
		conns := pool.Stat().NewConnsCount()
		first := &pgx.Batch{}
		first.Queue(`DELETE FROM pipelined`)
		tx, err := postgres.Begin(ctx, pool, first)
		if err != nil {
			t.Fatal(err)
		}
		tx.Close()
		if got := rows(t); len(got) != 2 {
			t.Errorf("rows = %v after Close without Commit, want both rows", got)
		}
		kept(t, conns)
	})
	t.Run("a failed first batch leaves nothing open", func(t *testing.T) {
		conns := pool.Stat().NewConnsCount()
		first := &pgx.Batch{}
		first.Queue(`INSERT INTO pipelined VALUES ('d', 4)`)
		first.Queue(`SELECT 1/0`)
		if _, err := postgres.Begin(ctx, pool, first); err == nil {
			t.Fatal("Begin with a failing statement returned nil")
		}
		c, err := pool.Acquire(ctx) // the pool's one connection
		if err != nil {
			t.Fatal(err)
		}
		status := c.Conn().PgConn().TxStatus()
		c.Release()
		if status != 'I' {
			t.Errorf("the pool's connection has transaction status %q after a failed Begin, want 'I' (idle)", status)
		}
		if got := rows(t); len(got) != 2 {
			t.Errorf("rows = %v, want the two from before", got)
		}
		kept(t, conns)
	})
	t.Run("IndexPlans hold for their transaction only", func(t *testing.T) {
		settings := func(b *pgx.Batch, into *string) {
			b.Queue(`SELECT concat_ws(' ', current_setting('plan_cache_mode'), current_setting('enable_seqscan'),
				current_setting('enable_bitmapscan'), current_setting('enable_hashjoin'), current_setting('enable_mergejoin'))`).
				QueryRow(func(row pgx.Row) error { return row.Scan(into) })
		}
		const want, dflt = "force_generic_plan off off off off", "auto on on on on"
		var inside, after string
		first := &pgx.Batch{}
		postgres.IndexPlans(first)
		settings(first, &inside)
		tx, err := postgres.Begin(ctx, pool, first)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx, nil); err != nil {
			t.Fatal(err)
		}
		tx.Close()
		next := &pgx.Batch{}
		settings(next, &after)
		if err := pool.SendBatch(ctx, next).Close(); err != nil { // the pool's one connection again
			t.Fatal(err)
		}
		if inside != want || after != dflt {
			t.Errorf("settings %q in the transaction and %q after it, want %q and %q", inside, after, want, dflt)
		}
		// A batch sent on its own is one implicit transaction: the settings hold in it and
		// end with it.
		inside, after = "", ""
		alone, then := &pgx.Batch{}, &pgx.Batch{}
		postgres.IndexPlans(alone)
		settings(alone, &inside)
		settings(then, &after)
		if err := pool.SendBatch(ctx, alone).Close(); err != nil {
			t.Fatal(err)
		}
		if err := pool.SendBatch(ctx, then).Close(); err != nil {
			t.Fatal(err)
		}
		if inside != want || after != dflt {
			t.Errorf("settings %q in a batch sent alone and %q after it, want %q and %q", inside, after, want, dflt)
		}
	})
}

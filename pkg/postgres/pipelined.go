package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pipelined is a transaction whose statements travel in pipelined batches on one
// connection: Begin sends BEGIN with the first batch's statements, Commit sends the last
// batch's statements with COMMIT. Each is one round trip however many statements it
// carries, so a transaction that reads, decides and writes takes two round trips, not
// one per statement plus BEGIN and COMMIT. On a busy machine every round trip inside a
// transaction is a wait in the run queue, with the transaction's row locks held.
//
// A statement that fails makes PostgreSQL skip the rest of the transaction, COMMIT
// included; Close then ends it. Always defer Close.
type Pipelined struct {
	conn  *pgxpool.Conn
	ended bool
}

// Begin acquires a connection from pool and sends BEGIN followed by first's statements
// (their callbacks run as their results arrive). On error nothing is left open.
func Begin(ctx context.Context, pool *pgxpool.Pool, first *pgx.Batch) (*Pipelined, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	t := &Pipelined{conn: conn}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if first != nil {
		b.QueuedQueries = append(b.QueuedQueries, first.QueuedQueries...)
	}
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// Commit sends last's statements (nil for none) and COMMIT as one batch. It returns nil
// only when PostgreSQL answered COMMIT: after an error, nothing of the transaction took
// effect (unless the answer itself was lost with the connection, as with any commit).
func (t *Pipelined) Commit(ctx context.Context, last *pgx.Batch) error {
	b := &pgx.Batch{}
	if last != nil {
		b.QueuedQueries = append(b.QueuedQueries, last.QueuedQueries...)
	}
	b.Queue("COMMIT").Exec(func(tag pgconn.CommandTag) error {
		if tag.String() != "COMMIT" {
			return fmt.Errorf("commit: the transaction ended with %s", tag)
		}
		return nil
	})
	if err := t.conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	t.ended = true
	return nil
}

// Close ends a transaction that Commit did not (ROLLBACK; after a failed COMMIT it only
// draws a warning) and gives the connection back: the pool would drop a connection given
// back inside a transaction, and open a new one for the next caller. A connection on
// which even ROLLBACK fails is closed.
func (t *Pipelined) Close() {
	if !t.ended {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := t.conn.Exec(ctx, "ROLLBACK"); err != nil {
			_ = t.conn.Conn().Close(ctx)
		}
		t.ended = true
	}
	t.conn.Release()
}

// PlanEachCall queues, for the transaction it runs in (a Begin…Commit, or a batch sent on
// its own, which PostgreSQL runs as one implicit transaction), plan_cache_mode =
// force_custom_plan:
// every later statement of the transaction is planned for its own arguments and for the
// tables' size at that moment. Use it in a transaction whose statements join an array of
// inputs (a batch) against a table that grows. A prepared statement is otherwise planned
// generically after its fifth call, once, and that plan is kept until the table's
// statistics change: built while the table was small, it scans the whole table on every
// later call (a sequential scan and hash join instead of an index probe per input), and
// with autovacuum late or off it never changes. Planning each call costs a fraction of a
// millisecond; the stale plan cost more every second (make bench, README "Performance").
func PlanEachCall(b *pgx.Batch) {
	b.Queue(`SELECT set_config('plan_cache_mode', 'force_custom_plan', true)`)
}

package postgres

import (
	"context"
	"fmt"
	"strings"
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

// IndexPlans queues, for the transaction it runs in (a Begin…Commit, or a batch sent on
// its own, which PostgreSQL runs as one implicit transaction), the planner settings for
// statements that look a batch's rows up by key in tables that grow: each later statement
// of the transaction gets a generic plan, made once per connection and cached, and that
// plan may not read a whole table where an index reaches the rows (sequential and bitmap
// scans, hash and merge joins are off). Use it in a transaction whose statements join an
// array of inputs (a batch) against such a table, and write the lookups as joins or
// "= ANY" conditions: an EXISTS or IN subquery may still be planned as a hashed subplan
// that reads the whole index (ExplainIndexPlans shows the plan; test it).
//
// Left to itself, PostgreSQL plans a prepared statement generically after its fifth call
// and keeps that plan until the table's statistics change. Made while the tables were
// small, that plan scans the whole table on every later call (a sequential scan and hash
// join instead of an index probe per input), and with autovacuum late or off it never
// changes. Planning every call instead (plan_cache_mode = force_custom_plan, what this
// package did before) keeps the plans right but costs as much as running these small
// statements: at 750 orders/s it was a third of the pipeline's statement time in
// PostgreSQL (make bench, docs/performance.md).
func IndexPlans(b *pgx.Batch) {
	b.Queue(indexPlansSQL)
}

const indexPlansSQL = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true),
	set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),
	set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`

// ExplainIndexPlans returns the plan (EXPLAIN, JSON) that query gets in a transaction that
// began with IndexPlans: the generic plan, the same whatever the arguments. args are SQL
// expressions for query's parameters ("500", "'{1,2}'::bigint[]"); only their types
// matter. Nothing the query would do is done: the transaction is rolled back.
func ExplainIndexPlans(ctx context.Context, pool *pgxpool.Pool, query string, args ...string) (string, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	fail := func(err error) (string, error) {
		// The statement may be left prepared on the connection: the pool drops it.
		_ = conn.Conn().Close(context.Background())
		return "", err
	}
	simple := pgx.QueryExecModeSimpleProtocol // PREPARE's text has parameters of its own
	if _, err := tx.Exec(ctx, indexPlansSQL); err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, "PREPARE loudly_explain AS "+query, simple); err != nil {
		return fail(err)
	}
	var plan string
	if err := tx.QueryRow(ctx, "EXPLAIN (FORMAT JSON) EXECUTE loudly_explain("+strings.Join(args, ", ")+")", simple).Scan(&plan); err != nil {
		return fail(err)
	}
	if _, err := tx.Exec(ctx, "DEALLOCATE loudly_explain", simple); err != nil {
		return fail(err)
	}
	return plan, nil
}

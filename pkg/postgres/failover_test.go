package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"loudly/internal/testenv"
	"loudly/pkg/postgres"
	"loudly/pkg/telemetry/telemetrytest"
)

// A multi-host URL with target_session_attrs=read-write reaches the server that accepts
// writes even when the first host listed is read-only, as a demoted primary is.
func TestConnect_MultiHostFindsTheWritableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	writable := testenv.Postgres(t)
	wu, err := url.Parse(writable)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(wu.Path, "/")

	// A server of its own made read-only as a whole, holding a database of the same name.
	ro := testenv.StartPostgres(t)
	admin, err := pgx.Connect(ctx, ro.DirectDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for _, q := range []string{"CREATE DATABASE " + db, "ALTER SYSTEM SET default_transaction_read_only = on", "SELECT pg_reload_conf()"} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	roURL, err := url.Parse(ro.DSN())
	if err != nil {
		t.Fatal(err)
	}

	c := telemetrytest.New(t, "postgres-test")
	dsn := fmt.Sprintf("postgres://postgres@%s,%s/%s?sslmode=disable&target_session_attrs=read-write", roURL.Host, wu.Host, db)
	pool, err := postgres.Connect(ctx, dsn, postgres.PoolSize{Max: 3, Min: 2}, c.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE written (n int)`); err != nil {
		t.Fatalf("a write through the multi-host URL: %v", err)
	}
	// The read-only server does not have the table: the write went to the writable one.
	var n int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, db).Scan(&n); err != nil || n != 1 {
		t.Fatalf("read-only server's database: %d, %v", n, err)
	}
	direct, err := pgx.Connect(ctx, writable)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(context.Background())
	if err := direct.QueryRow(ctx, `SELECT count(*) FROM written`).Scan(&n); err != nil {
		t.Fatalf("the table is not on the writable server: %v", err)
	}

	// Without target_session_attrs the same list connects to the read-only server first,
	// and the write fails there: the attribute is what picks the primary.
	plain := strings.Replace(dsn, "&target_session_attrs=read-write", "", 1)
	p2, err := postgres.Connect(ctx, plain, postgres.PoolSize{Max: 1}, c.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if _, err := p2.Exec(ctx, `CREATE TABLE other (n int)`); !postgres.IsReadOnly(err) {
		t.Errorf("a write on the first, read-only host: %v, want SQLSTATE 25006", err)
	}
}

// A connection whose write fails because its server has become read-only is dropped from
// the pool, not reused: the next write runs on a new connection (which, with a multi-host
// URL, finds the new primary).
func TestConnect_DropsAConnectionThatFoundTheServerReadOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := telemetrytest.New(t, "postgres-test")
	pool, err := postgres.Connect(ctx, testenv.Postgres(t), postgres.PoolSize{Max: 1}, c.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `CREATE TABLE t (n int)`); err != nil {
		t.Fatal(err)
	}
	// The pool's only connection turns read-only, as a session on a demoted server is.
	var before int
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	conn.Release()

	for i, q := range []string{`INSERT INTO t VALUES (1)`, `UPDATE t SET n = 2`} {
		_, err = pool.Exec(ctx, q)
		if i == 0 && !postgres.IsReadOnly(err) {
			t.Fatalf("write on the read-only connection: %v, want SQLSTATE 25006", err)
		}
		if i == 1 && err != nil {
			t.Fatalf("the write after the read-only error failed too (%v): the connection was reused", err)
		}
	}
	var after int
	if err := pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Errorf("backend %d still in the pool after it refused a write as read-only", before)
	}
	// A read-only error inside a pipelined batch drops its connection as well.
	conn, err = pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	conn.Release()
	b := &pgx.Batch{}
	b.Queue(`SELECT 1`)
	b.Queue(`INSERT INTO t VALUES (3)`)
	if err := pool.SendBatch(ctx, b).Close(); !postgres.IsReadOnly(err) {
		t.Fatalf("batch on the read-only connection: %v, want SQLSTATE 25006", err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO t VALUES (4)`); err != nil {
		t.Errorf("the write after a read-only batch failed (%v): the connection was reused", err)
	}
}

// Every wait on the database is bounded: a statement that runs past PoolSize.Timeout
// fails with the deadline, and loudly.db.timeouts counts it; one within it succeeds, and
// a caller's own shorter deadline still applies.
func TestConnect_BoundsEveryWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := telemetrytest.New(t, "postgres-test")
	pool, err := postgres.Connect(ctx, testenv.Postgres(t), postgres.PoolSize{Max: 2, Timeout: 300 * time.Millisecond}, c.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// Before any timeout, each wait's series exists at 0 (so the first one is an increase).
	for _, wait := range []string{"acquire", "query", "batch", "copy", "prepare"} {
		if pts := c.Counter(t, "loudly.db.timeouts", map[string]string{"wait": wait}); len(pts) != 1 || pts[0].Value != 0 {
			t.Errorf("loudly.db.timeouts{wait=%s} before any timeout: %+v, want one series at 0", wait, pts)
		}
	}
	if _, err := pool.Exec(ctx, `SELECT pg_sleep(30)`); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a 30 s statement under a 300 ms bound: %v, want the deadline", err)
	}
	if n := c.CounterValue(t, "loudly.db.timeouts", map[string]string{"wait": "query"}); n != 1 {
		t.Errorf("loudly.db.timeouts{wait=query} = %d, want 1", n)
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_sleep(30)`)
	if err := pool.SendBatch(ctx, b).Close(); err == nil {
		t.Fatal("a 30 s batch under a 300 ms bound succeeded")
	}
	if n := c.CounterValue(t, "loudly.db.timeouts", map[string]string{"wait": "batch"}); n != 1 {
		t.Errorf("loudly.db.timeouts{wait=batch} = %d, want 1", n)
	}
	// The pool still works: the timed-out connections were closed, new ones open.
	if _, err := pool.Exec(ctx, `SELECT 1`); err != nil {
		t.Errorf("a statement after the timeouts: %v", err)
	}
	// A multi-host URL, a key=value DSN and garbage.
	if err := postgres.CheckDSN("host=a,b port=5432,5433 dbname=x target_session_attrs=read-write"); err != nil {
		t.Errorf("key=value multi-host DSN: %v", err)
	}
	if err := postgres.CheckDSN("postgres://a:1,b:2/db?target_session_attrs=read-write"); err != nil {
		t.Errorf("multi-host URL: %v", err)
	}
	if err := postgres.CheckDSN("host=a target_session_attrs=sometimes"); err == nil {
		t.Error("an unknown target_session_attrs was accepted")
	}
}

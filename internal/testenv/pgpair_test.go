package testenv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"loudly/internal/testenv"
)

// A pair fails over and back without losing a committed row: the primary is killed, the
// standby promoted, the old primary rewound into its standby, and the same again the
// other way. A client on DSN follows the primary. With the standby lost, a commit waits
// (it is synchronous) until the standby is back.
func TestPostgresPair_FailsOverAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := testenv.StartPostgresPair(t)
	write := func(n int) {
		t.Helper()
		conn, err := pgx.Connect(ctx, p.DSN())
		if err != nil {
			t.Fatalf("connect through the multi-host URL: %v", err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, `INSERT INTO rows VALUES ($1)`, n); err != nil {
			t.Fatalf("insert %d: %v\n%s", n, err, p.Logs())
		}
	}
	count := func(dsn string) int {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM rows`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	conn, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE rows (n int)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	write(1)
	// Synchronous: the committed row is on the standby's disk; with remote flush it may
	// not be replayed yet, so wait for replay before reading there.
	for count(p.StandbyDSN()) != 1 {
		time.Sleep(20 * time.Millisecond)
	}
	for round := range 2 {
		p.KillPrimary()
		p.Promote()
		write(10 + round)
		p.Rejoin()
		write(20 + round)
		if n := count(p.PrimaryDSN()); n != 3+2*round {
			t.Fatalf("round %d: %d rows on the new primary, want %d", round, n, 3+2*round)
		}
	}

	// The standby lost: a commit waits, bounded only by the client's own deadline, and
	// completes once the standby is back.
	p.KillStandby()
	wctx, wcancel := context.WithTimeout(ctx, time.Second)
	c2, err := pgx.Connect(ctx, p.DSN())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c2.Exec(wctx, `INSERT INTO rows VALUES (99)`)
	wcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a commit with the synchronous standby gone: %v, want it to wait past the client's deadline", err)
	}
	p.RestartStandby()
	write(100)
	if n := count(p.PrimaryDSN()); n != 7 {
		// 5 rows, the commit that waited (committed locally, released when the standby came
		// back) and the last one.
		t.Errorf("%d rows after the standby came back, want 7", n)
	}
}

// A stalled proxy neither forwards nor closes: a query waits out the client's deadline
// with no error from the network, a new connection does not complete, and after Unstall
// new connections work again.
func TestProxy_StallHoldsWithoutClosing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	proxy, dsn := testenv.ProxyDSN(t, testenv.Postgres(t))
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	proxy.Stall()
	qctx, qcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = conn.Exec(qctx, `SELECT 1`)
	qcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a query through the stalled proxy: %v, want it to wait past its deadline", err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
	c2, err := pgx.Connect(cctx, dsn)
	ccancel()
	if err == nil {
		c2.Close(ctx)
		t.Error("a connection through the stalled proxy completed")
	}
	proxy.Unstall()
	c3, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("a connection after Unstall: %v", err)
	}
	defer c3.Close(context.Background())
	if _, err := c3.Exec(ctx, `SELECT 1`); err != nil {
		t.Errorf("a query after Unstall: %v", err)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/internal/testenv"
	"loudly/pkg/outbox"
	"loudly/pkg/postgres"
	"loudly/pkg/telemetry/telemetrytest"
)

// acceptScript is the pgbench script of the order service's accept transaction. Paths
// are relative to this package, where `go test` runs.
const (
	acceptScript    = "testdata/accept.pgbench"
	orderMigrations = "../services/order/order/migrations"
)

// pgbenchRun is what one pgbench run reported.
type pgbenchRun struct {
	Clients   int
	Processed int     // transactions completed
	Failed    int     // transactions that failed (PostgreSQL 15+ reports them; 0 before)
	TPS       float64 // without the initial connection time
	Output    string  // the whole report, for the log
}

// findPgbench returns the pgbench of the local PostgreSQL install: the one in
// `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin, else the PATH's.
func findPgbench() (string, error) {
	var dirs []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	dirs = append(dirs, testenv.VersionedPostgresBins()...)
	for _, d := range dirs {
		p := filepath.Join(d, "pgbench")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	return "", errors.New("pgbench not found in `pg_config --bindir`, /usr/lib/postgresql/*/bin or on PATH; " +
		"it comes with the PostgreSQL server (Debian: apt-get install postgresql) — install it, or put it on PATH")
}

// mustFindPgbench fails the test or benchmark when pgbench is missing: the limit the
// pipeline is measured against cannot be measured without it.
func mustFindPgbench(t testing.TB) string {
	t.Helper()
	p, err := findPgbench()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// orderSchemaCopy returns the DSN of a fresh database holding the order service's schema,
// applied from its own migrations the way the service applies them at start-up.
func orderSchemaCopy(t testing.TB) string {
	t.Helper()
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, "orders", os.DirFS(orderMigrations)); err != nil {
		t.Fatalf("order schema: %v", err)
	}
	// The outbox table is the outbox package's, created as the service base creates it.
	ob, err := outbox.New("orders.outbox", pool, telemetrytest.New(t, "pgbench").Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	if err := ob.Migrate(ctx); err != nil {
		t.Fatalf("outbox table: %v", err)
	}
	return dsn
}

// runPgbench runs the accept script with clients connections (and one pgbench thread per
// CPU, at most one per client) for the given time against dsn.
func runPgbench(ctx context.Context, pgbench, dsn string, clients int, d time.Duration) (pgbenchRun, error) {
	seconds := max(1, int(d.Round(time.Second)/time.Second))
	threads := max(1, min(clients, runtime.NumCPU()))
	cmd := exec.CommandContext(ctx, pgbench, "--no-vacuum", "--protocol=prepared",
		"--client="+strconv.Itoa(clients), "--jobs="+strconv.Itoa(threads), "--time="+strconv.Itoa(seconds),
		"--file="+acceptScript, dsn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return pgbenchRun{Output: string(out)}, fmt.Errorf("%s: %w\n%s", cmd, err, out)
	}
	r, err := parsePgbench(string(out))
	r.Clients = clients
	return r, err
}

var (
	pgbenchProcessed = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	pgbenchFailed    = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	// PostgreSQL 14+ prints one tps line; older versions print "excluding connections
	// establishing" next to "including".
	pgbenchTPS = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)`)
)

// parsePgbench reads pgbench's report.
func parsePgbench(out string) (pgbenchRun, error) {
	r := pgbenchRun{Output: out}
	m := pgbenchProcessed.FindStringSubmatch(out)
	t := pgbenchTPS.FindStringSubmatch(out)
	if m == nil || t == nil {
		return r, fmt.Errorf("pgbench report without a transaction count or tps line:\n%s", out)
	}
	r.Processed, _ = strconv.Atoi(m[1])
	if f := pgbenchFailed.FindStringSubmatch(out); f != nil {
		r.Failed, _ = strconv.Atoi(f[1])
	}
	var err error
	if r.TPS, err = strconv.ParseFloat(t[1], 64); err != nil {
		return r, fmt.Errorf("pgbench tps %q: %w", t[1], err)
	}
	return r, nil
}

func TestParsePgbench(t *testing.T) {
	pg15 := `pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: testdata/accept.pgbench
scaling factor: 1
query mode: prepared
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 3 s
number of transactions actually processed: 2180
number of failed transactions: 3 (0.137%)
latency average = 10.041 ms
initial connection time = 289.349 ms
tps = 796.706459 (without initial connection time)
`
	pg12 := `transaction type: testdata/accept.pgbench
number of transactions actually processed: 512
latency average = 20.1 ms
tps = 395.120000 (including connections establishing)
tps = 401.500000 (excluding connections establishing)
`
	tests := []struct {
		name    string
		out     string
		want    pgbenchRun
		wantErr bool
	}{
		{name: "PostgreSQL 15", out: pg15, want: pgbenchRun{Processed: 2180, Failed: 3, TPS: 796.706459}},
		{name: "PostgreSQL 12 reports the tps excluding connections", out: pg12, want: pgbenchRun{Processed: 512, TPS: 401.5}},
		{name: "an aborted run has no tps", out: "pgbench: error: client 0 aborted in command 1\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePgbench(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parsePgbench error = %v, want error %t", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			got.Output = ""
			if got != tt.want {
				t.Errorf("parsePgbench = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPgbenchScript_AgainstOrderSchema runs the accept script for a second on a copy of
// the real order schema: every transaction pgbench counts must have left exactly one
// order, one history row and one outbox row, linked to each other as the service links
// them. (It asserts what was written, never how fast.)
func TestPgbenchScript_AgainstOrderSchema(t *testing.T) {
	pgbench := mustFindPgbench(t)
	dsn := orderSchemaCopy(t)
	r, err := runPgbench(t.Context(), pgbench, dsn, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Processed == 0 || r.Failed != 0 || r.TPS <= 0 {
		t.Fatalf("pgbench processed %d transactions, %d failed, tps %v; want some and no failures\n%s", r.Processed, r.Failed, r.TPS, r.Output)
	}

	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var orders, history, outbox, linked, pending, badPayload int
	err = conn.QueryRow(t.Context(), `SELECT
		(SELECT count(*) FROM orders.orders),
		(SELECT count(*) FROM orders.order_history),
		(SELECT count(*) FROM orders.outbox),
		(SELECT count(*) FROM orders.orders o
			JOIN orders.order_history h ON h.order_id = o.id
			JOIN orders.outbox x ON x.event_id = h.event_id),
		(SELECT count(*) FROM orders.orders WHERE status = 'pending'),
		(SELECT count(*) FROM orders.outbox x JOIN orders.order_history h ON h.event_id = x.event_id
			WHERE convert_from(x.payload, 'UTF8')::jsonb->>'key' IS DISTINCT FROM h.order_id::text
			   OR x.subject <> 'orders.placed' OR NOT x.headers ? 'traceparent')`).
		Scan(&orders, &history, &outbox, &linked, &pending, &badPayload)
	if err != nil {
		t.Fatal(err)
	}
	// pgbench counts the transactions it finished; a client's last one may be cut off by
	// the end of the run and rolled back, never half written.
	if orders != r.Processed || history != r.Processed || outbox != r.Processed || linked != r.Processed || pending != r.Processed {
		t.Errorf("after %d transactions: %d orders (%d pending), %d history rows, %d outbox rows, %d linked order→history→outbox; want %d of each",
			r.Processed, orders, pending, history, outbox, linked, r.Processed)
	}
	if badPayload != 0 {
		t.Errorf("%d outbox rows do not carry their order's id, the orders.placed subject and a traceparent header", badPayload)
	}
}

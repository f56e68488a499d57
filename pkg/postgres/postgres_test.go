package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/codes"

	"loudly/internal/testenv"
	"loudly/pkg/postgres"
	"loudly/pkg/telemetry/telemetrytest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A pipelined batch is one span: each statement that succeeded is an event on it with its
// SQL, and a statement that failed is a span of its own with the error, as otelpgx makes it.
func TestConnect_ABatchIsOneSpanWithAnEventPerStatement(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := telemetrytest.New(t, "postgres-test")
	pool, err := postgres.Connect(ctx, testenv.Postgres(t), postgres.PoolSize{Max: 2}, c.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tracer := c.Tracer()

	send := func(name string, sqls ...string) {
		t.Helper()
		pctx, parent := tracer.Start(ctx, name)
		b := &pgx.Batch{}
		for _, q := range sqls {
			b.Queue(q)
		}
		_ = pool.SendBatch(pctx, b).Close()
		parent.End()
	}
	// under returns the spans below the span named name (children and grandchildren: a
	// failed statement's span is a child of the batch's), the events of the batch's span,
	// and the statuses of the statement spans.
	under := func(name string) (out []string, batch map[string]int, failed []codes.Code) {
		t.Helper()
		batch = map[string]int{}
		ids := map[string]bool{}
		for _, s := range c.Spans() {
			if s.Name() == name {
				ids[s.SpanContext().SpanID().String()] = true
			}
		}
		for range 2 {
			for _, s := range c.Spans() {
				if ids[s.Parent().SpanID().String()] {
					ids[s.SpanContext().SpanID().String()] = true
				}
			}
		}
		for _, s := range c.Spans() {
			if !ids[s.Parent().SpanID().String()] {
				continue
			}
			out = append(out, s.Name())
			if s.Name() == "batch start" {
				for _, e := range s.Events() {
					batch[e.Name]++
				}
			} else {
				failed = append(failed, s.Status().Code)
			}
		}
		return out, batch, failed
	}

	send("good", "SELECT 1", "SELECT 2", "SELECT 3")
	spans, events, _ := under("good")
	if len(spans) != 1 || spans[0] != "batch start" {
		t.Errorf("a batch of three statements made spans %q, want only the batch's", spans)
	}
	if events["batch query"] != 3 {
		t.Errorf("the batch span has events %v, want 3 \"batch query\"", events)
	}

	send("bad", "SELECT 1", "SELECT 1/0")
	spans, events, failed := under("bad")
	if len(spans) != 2 || len(failed) != 1 || failed[0] != codes.Error {
		t.Errorf("a batch whose second statement fails made spans %q (statuses %v), want the batch's and an error span for the failed statement", spans, failed)
	}
	if events["batch query"] != 1 {
		t.Errorf("the failed batch's span has events %v, want 1 \"batch query\" (the statement that succeeded)", events)
	}
}

// Connect returns with PoolSize.Min connections open, and fails, naming DB_MIN_CONNS,
// when PostgreSQL will not give them.
func TestConnect_OpensMinConns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := testenv.Postgres(t)
	c := telemetrytest.New(t, "postgres-test")

	pool, err := postgres.Connect(ctx, dsn, postgres.PoolSize{Max: 5, Min: 4}, c.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	if n := pool.Stat().TotalConns(); n < 4 {
		t.Errorf("%d connections open when Connect returned, want 4", n)
	}
	// A role allowed two connections: a pool of two opens, the third of Min 3 is refused.
	// (Superusers are exempt from connection limits, so the test needs a role of its own.)
	role := testenv.Prefix(t) + "_two_conns"
	if _, err := pool.Exec(ctx, `CREATE ROLE `+role+` LOGIN PASSWORD 'two' CONNECTION LIMIT 2`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), `DROP ROLE `+role) })
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(role, "two")
	if p, err := postgres.Connect(ctx, u.String(), postgres.PoolSize{Max: 2, Min: 2}, c.Telemetry); err != nil {
		t.Fatalf("two connections for a role allowed two: %v", err)
	} else {
		p.Close()
	}
	p, err := postgres.Connect(ctx, u.String(), postgres.PoolSize{Max: 3, Min: 3}, c.Telemetry)
	if err == nil {
		p.Close()
		t.Fatal("Connect returned with fewer connections open than Min")
	}
	if !strings.Contains(err.Error(), "opening DB_MIN_CONNS=3 connections") {
		t.Errorf("error %q does not name DB_MIN_CONNS", err)
	}
	pool.Close()
}

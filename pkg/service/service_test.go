package service_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"loudly/internal/testenv"
	"loudly/pkg/consumer"
	"loudly/pkg/env"
	"loudly/pkg/lifecycle"
	"loudly/pkg/service"
	"loudly/pkg/telemetry/telemetrytest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func config(t *testing.T) service.Config {
	t.Helper()
	vars := map[string]string{"DATABASE_URL": testenv.Postgres(t), "NATS_URL": testenv.NATS(t), "HTTP_ADDR": "127.0.0.1:0", "SHUTDOWN_TIMEOUT": "5s"}
	r := env.New(func(k string) string { return vars[k] })
	cfg := service.ConfigFromEnv(r, ":8080")
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfigFromEnv_PoolSize(t *testing.T) {
	read := func(vars map[string]string) (service.Config, error) {
		r := env.New(func(k string) string { return vars[k] })
		cfg := service.ConfigFromEnv(r, ":8080")
		return cfg, r.Err()
	}
	cfg, err := read(nil)
	if err != nil || cfg.DBMaxConns != service.DefaultDBMaxConns || cfg.DBMinConns != service.DefaultDBMinConns {
		t.Errorf("defaults: max %d, min %d (%v); want %d and %d", cfg.DBMaxConns, cfg.DBMinConns, err, service.DefaultDBMaxConns, service.DefaultDBMinConns)
	}
	// A pool smaller than the default minimum is opened whole, not refused.
	if cfg, err := read(map[string]string{"DB_MAX_CONNS": "2"}); err != nil || cfg.DBMinConns != 2 {
		t.Errorf("DB_MAX_CONNS=2: min %d (%v), want 2", cfg.DBMinConns, err)
	}
	if cfg, err := read(map[string]string{"DB_MIN_CONNS": "0"}); err != nil || cfg.DBMinConns != 0 {
		t.Errorf("DB_MIN_CONNS=0: min %d (%v), want 0", cfg.DBMinConns, err)
	}
	if _, err := read(map[string]string{"DB_MAX_CONNS": "10", "DB_MIN_CONNS": "11"}); err == nil ||
		!strings.Contains(err.Error(), `DB_MIN_CONNS="11": must not exceed DB_MAX_CONNS (10)`) {
		t.Errorf("DB_MIN_CONNS above DB_MAX_CONNS: %v", err)
	}
}

// DATABASE_URL may list several servers, as a URL or in libpq's key=value form, for a
// primary and its standbys; what pgx cannot parse is refused at start-up.
func TestConfigFromEnv_DatabaseURL(t *testing.T) {
	read := func(v string) (service.Config, error) {
		r := env.New(func(k string) string { return map[string]string{"DATABASE_URL": v, "DB_TIMEOUT": "3s"}[k] })
		cfg := service.ConfigFromEnv(r, ":8080")
		return cfg, r.Err()
	}
	for _, ok := range []string{
		"postgres://loudly@pg-a:5432,pg-b:5432/loudly?target_session_attrs=read-write",
		"host=pg-a,pg-b port=5432,5432 user=loudly dbname=loudly target_session_attrs=read-write",
	} {
		cfg, err := read(ok)
		if err != nil || cfg.DatabaseURL != ok || cfg.DBTimeout != 3*time.Second {
			t.Errorf("%s: %q, timeout %s, %v", ok, cfg.DatabaseURL, cfg.DBTimeout, err)
		}
	}
	for _, bad := range []string{"mysql://db/x", "host=a target_session_attrs=sometimes", "just words"} {
		if _, err := read(bad); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
			t.Errorf("%s: %v, want DATABASE_URL refused", bad, err)
		}
	}
}

func TestBase_OpensWiresAndRunsAService(t *testing.T) {
	ctx := context.Background()
	tel := telemetrytest.New(t, "shipping")
	prefix := testenv.Prefix(t)
	stream := jetstream.StreamConfig{Name: prefix + "_SHIPPING", Subjects: []string{prefix + ".shipping.>"}}
	b, err := service.Open(ctx, service.Spec{Name: "shipping", Schema: "shipping", Streams: []jetstream.StreamConfig{stream}}, config(t), tel.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Stream(ctx, stream.Name); err != nil {
		t.Errorf("the declared stream was not ensured: %v", err)
	}
	if open := b.Pool.Stat().TotalConns(); open < int32(service.DefaultDBMinConns) {
		t.Errorf("%d connections open once Open returned, want DB_MIN_CONNS (%d)", open, service.DefaultDBMinConns)
	}
	if _, err := b.Outbox(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Outbox(ctx); err == nil {
		t.Error("a second outbox was accepted")
	}
	if got := b.Idempotency().Name(); got != "shipping.processed_events" {
		t.Errorf("the record of processed events is %s, want shipping.processed_events", got)
	}
	var tables int
	if err := b.Pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'shipping'
		AND table_name IN ('outbox', 'processed_events')`).Scan(&tables); err != nil || tables != 2 {
		t.Errorf("%d of the outbox and idempotency tables in schema shipping (%v), want 2", tables, err)
	}
	runner, err := b.Consume(ctx, b.Config.Consumer.For(stream.Name, "shipping", prefix+".shipping.>"),
		func(context.Context, *consumer.Message) consumer.Result { return consumer.Applied("shipped") })
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	b.OnClose(func() { closed = true })
	stop := testenv.RunService(t, "the base", 10*time.Second, b.Run, b.Close)

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		testenv.WaitFor(t, 5*time.Second, path+" answering 200", func() bool {
			res, err := http.Get("http://" + b.Addr() + path)
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
	}
	if !runner.Ready() {
		t.Error("the consumer added with Consume is not running")
	}
	stop()
	if !closed || b.Context().Err() == nil {
		t.Error("Close did not run OnClose or end the base's context")
	}
	// The consumer stopped with Run: readiness now fails on it.
	if runner.Ready() {
		t.Error("the consumer still reports ready after Run returned")
	}
}

func TestBase_AWorkerThatStopsEarlyStopsTheServiceWithAnError(t *testing.T) {
	tel := telemetrytest.New(t, "shipping")
	b, err := service.Open(context.Background(), service.Spec{Name: "shipping", Schema: "shipping"}, config(t), tel.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.Go("sweeper", func(context.Context) error { return nil })
	done := make(chan error, 1)
	go func() { done <- b.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, lifecycle.ErrWorkerStopped) {
			t.Fatalf("Run returned %v, want ErrWorkerStopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept serving after a worker stopped")
	}
}

func TestOpen_FailsCleanlyOnABadDependency(t *testing.T) {
	cfg := config(t)
	cfg.NATSURL = "nats://127.0.0.1:1"
	tel := telemetrytest.New(t, "shipping")
	if _, err := service.Open(context.Background(), service.Spec{Name: "shipping", Schema: "shipping"}, cfg, tel.Telemetry); err == nil {
		t.Fatal("Open succeeded without NATS")
	}
	if _, err := service.Open(context.Background(), service.Spec{Name: "shipping"}, cfg, tel.Telemetry); err == nil {
		t.Fatal("Open succeeded without a schema")
	}
}

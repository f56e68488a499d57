package service_test

import (
	"context"
	"errors"
	"net/http"
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
	if _, err := b.Outbox(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Outbox(ctx); err == nil {
		t.Error("a second outbox was accepted")
	}
	if _, err := b.Idempotency(ctx); err != nil {
		t.Fatal(err)
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

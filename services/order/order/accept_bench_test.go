package order

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"loudly/internal/testenv"
	"loudly/pkg/telemetry/telemetrytest"
)

// BenchmarkAccept is the cost of one POST /v1/orders with an Idempotency-Key, answered
// 202, by a running order service on a real PostgreSQL: allocations per order (stable
// from run to run, unlike time on a shared machine) and time. The client and the
// service's other workers (the relay publishing each order.placed) run in this process
// and count too.
func BenchmarkAccept(b *testing.B) {
	dsn, natsURL := testenv.Postgres(b), testenv.NATS(b)
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"DATABASE_URL": dsn, "NATS_URL": natsURL, "HTTP_ADDR": "127.0.0.1:0", "SHUTDOWN_TIMEOUT": "5s"}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	tel := telemetrytest.New(b, "order")
	svc, err := New(context.Background(), cfg, tel.Telemetry)
	if err != nil {
		b.Fatal(err)
	}
	testenv.RunService(b, "order service", 10*time.Second, svc.Run, svc.Close)
	url := "http://" + svc.Addr() + "/v1/orders"
	client := &http.Client{}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req, err := http.NewRequest("POST", url, strings.NewReader(goodOrder))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprint("bench-", i))
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

package order

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"loudly/internal/testenv"
	"loudly/pkg/telemetry"
)

// With a real Prometheus (exemplar storage on) scraping both services under load, the
// exemplars of the decision counter are trace ids the services really exported over OTLP:
// the metric → trace jump works end to end.
func TestPrometheus_DecisionExemplarsAreExportedTraces(t *testing.T) {
	receiver := testenv.OTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.URL)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "1000")
	exporting := func(name string) *telemetry.Telemetry {
		tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: name, LogWriter: io.Discard,
			OTLP: telemetry.OTLP{Traces: telemetry.ProtocolHTTP, Metrics: telemetry.ProtocolHTTP, Logs: telemetry.ProtocolHTTP}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
		return tel
	}
	dsn, natsURL := testenv.Postgres(t), testenv.NATS(t)
	invTel, orderTel := exporting("inventory"), exporting("order")
	inv := startInventory(t, dsn, natsURL, invTel)
	r := startWith(t, testConfig(t, dsn, natsURL), orderTel)

	prom := testenv.StartPrometheus(t, testenv.PrometheusConfig{Targets: map[string][]string{
		"order": {r.svc.Addr()}, "inventory": {inv.Addr()},
	}})
	prom.WaitTargetsUp(t, 15*time.Second)

	// A few seconds of orders, some of them invalid, so several outcomes carry exemplars.
	for i := range 150 {
		body := goodOrder
		if i%10 == 0 {
			body = strings.Replace(goodOrder, "BOOK-001", "NOPE-1", 1)
		}
		if i%25 == 0 {
			body = `{"customer_id":1}`
		}
		r.do(t, "POST", "/v1/orders", "application/json", body, map[string]string{"Idempotency-Key": fmt.Sprint(i)})
		time.Sleep(20 * time.Millisecond)
	}

	var exemplars []promv1.Exemplar
	testenv.WaitFor(t, 20*time.Second, "exemplars of loudly_decisions_total in Prometheus", func() bool {
		exemplars = prom.QueryExemplars(t, "loudly_decisions_total", 5*time.Minute)
		return len(exemplars) >= 3
	})
	for _, tel := range []*telemetry.Telemetry{orderTel, invTel} {
		if err := tel.TracerProvider.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range exemplars {
		id := string(e.Labels["trace_id"])
		if len(id) != 32 {
			t.Errorf("exemplar %v has no trace id", e.Labels)
			continue
		}
		if !receiver.HasTrace(id) {
			t.Errorf("exemplar trace %s was never exported", id)
		}
	}
	if receiver.Requests("/v1/metrics") == 0 || receiver.Requests("/v1/logs") == 0 {
		t.Errorf("OTLP metric exports %d, log exports %d: want both", receiver.Requests("/v1/metrics"), receiver.Requests("/v1/logs"))
	}
	// The business series Prometheus stores are the ones dashboards will use.
	for _, q := range []string{
		`sum(loudly_orders_accepted_total)`,
		`sum by (status) (loudly_orders_settled_total)`,
		`sum(loudly_decisions_total{stage="consume"})`,
		`histogram_quantile(0.99, sum by (le) (rate(loudly_order_settlement_duration_seconds_bucket[1m])))`,
	} {
		if len(prom.Query(t, q)) == 0 {
			t.Errorf("no data for %s", q)
		}
	}
}

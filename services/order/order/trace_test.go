package order

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"loudly/internal/testenv"
	"loudly/pkg/telemetry"
	"loudly/pkg/telemetry/telemetrytest"
	"loudly/services/inventory/inventory"
)

// startInventory runs a real inventory service beside the order service under test.
func startInventory(t *testing.T, dsn, natsURL string, tel *telemetry.Telemetry) *inventory.Service {
	t.Helper()
	cfg, err := inventory.ConfigFromEnv(func(k string) string {
		return map[string]string{"DATABASE_URL": dsn, "NATS_URL": natsURL, "HTTP_ADDR": "127.0.0.1:0"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.New(context.Background(), cfg, tel)
	if err != nil {
		t.Fatal(err)
	}
	testenv.RunService(t, "inventory", 30*time.Second, inv.Run, inv.Close)
	return inv
}

// One order, one trace: the HTTP request, the relay's publish, the inventory consumer, its
// result's publish and the settlement are one causal chain across real NATS.
func TestTrace_AnOrderIsOneTraceFromRequestToSettlement(t *testing.T) {
	dsn, natsURL := testenv.Postgres(t), testenv.NATS(t)
	invTel := telemetrytest.New(t, "inventory")
	startInventory(t, dsn, natsURL, invTel.Telemetry)

	r := start(t, testConfig(t, dsn, natsURL))
	created := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, nil)
	id, _ := created.body["id"].(string)
	testenv.WaitFor(t, 10*time.Second, "the order to be confirmed", func() bool {
		return r.do(t, "GET", "/v1/orders/"+id, "", "", nil).body["status"] == StatusConfirmed
	})

	all := func() []sdktrace.ReadOnlySpan { return append(r.tel.Spans(), invTel.Spans()...) }
	find := func(name string, kind trace.SpanKind) sdktrace.ReadOnlySpan {
		for _, s := range all() {
			if s.Name() == name && s.SpanKind() == kind {
				return s
			}
		}
		return nil
	}
	chain := []struct {
		name string
		kind trace.SpanKind
	}{
		{"POST /v1/orders", trace.SpanKindServer},
		{"publish orders.placed", trace.SpanKindProducer},
		{"process orders.placed", trace.SpanKindConsumer},
		{"publish inventory.reserved", trace.SpanKindProducer},
		{"process inventory.reserved", trace.SpanKindConsumer},
	}
	testenv.WaitFor(t, 5*time.Second, "every span of the chain to end", func() bool {
		for _, c := range chain {
			if find(c.name, c.kind) == nil {
				return false
			}
		}
		return true
	})
	var parent sdktrace.ReadOnlySpan
	for _, c := range chain {
		s := find(c.name, c.kind)
		if got, want := s.SpanContext().TraceID().String(), created.header.Get("Traceparent")[3:35]; got != want {
			t.Errorf("%s: trace id %s, want the request's %s", c.name, got, want)
		}
		if parent != nil && s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("%s: parent %s, want %s (%s)", c.name, s.Parent().SpanID(), parent.SpanContext().SpanID(), parent.Name())
		}
		parent = s
	}
	for _, name := range []string{"process orders.placed", "process inventory.reserved"} {
		s := find(name, trace.SpanKindConsumer)
		var decided bool
		for _, e := range s.Events() {
			decided = decided || e.Name == "decision"
		}
		attrs := map[string]string{}
		for _, a := range s.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
		}
		if !decided || attrs["messaging.system"] != "nats" || attrs["messaging.destination.name"] == "" || attrs["messaging.nats.message.delivery_count"] != "1" {
			t.Errorf("%s: decision event %v, attributes %v", name, decided, attrs)
		}
	}
}

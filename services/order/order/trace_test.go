package order

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"loudly/internal/testenv"
	"loudly/pkg/deadletter"
	"loudly/pkg/telemetry"
	"loudly/pkg/telemetry/telemetrytest"
	"loudly/services/events"
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

// A poison message published without trace context (a producer that does not propagate)
// is decided invalid by inventory and dead-lettered; the exemplar of that decision is the
// on-call engineer's way in, and the trace it opens must go on to what the order service's
// dead-letter consumer did with the letter.
func TestTrace_APoisonMessagesExemplarLeadsToItsDeadLetterHandling(t *testing.T) {
	dsn, natsURL := testenv.Postgres(t), testenv.NATS(t)
	invTel := telemetrytest.New(t, "inventory")
	startInventory(t, dsn, natsURL, invTel.Telemetry)
	r := start(t, testConfig(t, dsn, natsURL))

	js := testenv.JetStream(t, natsURL)
	poison := nats.NewMsg(events.SubjectOrderPlaced)
	poison.Data = []byte(`{"id":`) // no traceparent header
	if _, err := js.PublishMsg(context.Background(), poison, jetstream.WithMsgID("poison-untraced-"+t.Name())); err != nil {
		t.Fatal(err)
	}

	// The exemplar of inventory's invalid decision.
	var traceID string
	testenv.WaitFor(t, 10*time.Second, "an exemplar on inventory's invalid decision", func() bool {
		for _, p := range invTel.Counter(t, "loudly.decisions", map[string]string{"outcome": "invalid"}) {
			for _, e := range p.Exemplars {
				traceID = hex.EncodeToString(e.TraceID)
			}
		}
		return traceID != ""
	})

	// Every span of that trace, in both services.
	inTrace := func(tel *telemetrytest.Capture, kind trace.SpanKind, name string) sdktrace.ReadOnlySpan {
		for _, s := range tel.Spans() {
			if s.SpanContext().TraceID().String() == traceID && s.SpanKind() == kind && s.Name() == name {
				return s
			}
		}
		return nil
	}
	decision := func(s sdktrace.ReadOnlySpan) map[string]string {
		for _, e := range s.Events() {
			if e.Name == "decision" {
				attrs := map[string]string{}
				for _, a := range e.Attributes {
					attrs[string(a.Key)] = a.Value.Emit()
				}
				return attrs
			}
		}
		return nil
	}
	letters := "process " + deadletter.SubjectPrefix + InventoryConsumerID
	var decided, handled sdktrace.ReadOnlySpan
	testenv.WaitFor(t, 10*time.Second, "the dead-letter consumer's span in the exemplar's trace", func() bool {
		decided = inTrace(invTel, trace.SpanKindConsumer, "process "+events.SubjectOrderPlaced)
		handled = inTrace(r.tel, trace.SpanKindConsumer, letters)
		return decided != nil && handled != nil
	})
	if d := decision(decided); d["loudly.outcome"] != "invalid" {
		t.Errorf("inventory's span of the exemplar's trace decided %v, want invalid", d)
	}
	if got, want := handled.Parent().SpanID(), decided.SpanContext().SpanID(); got != want {
		t.Errorf("the dead-letter handling's parent is span %s, want the deciding span %s", got, want)
	}
	if d := decision(handled); d == nil || d["loudly.reason"] != "not_an_order" {
		t.Errorf("the dead-letter consumer's decision in the trace: %v, want rejected not_an_order (the poison is no order)", d)
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"loudly/internal/ordertrace"
	"loudly/internal/testenv"
	"loudly/pkg/faults"
	"loudly/pkg/telemetry/telemetrytest"
	"loudly/services/drill"
	"loudly/services/inventory/inventory"
	"loudly/services/order/order"
)

// pipeline is both services, running in this process on their own database and broker.
type pipeline struct {
	natsURL, orderURL, invURL string
	js                        jetstream.JetStream
	stopInventory             func()
	orderTel                  *telemetrytest.Capture
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	dsn := testenv.Postgres(t)
	natsURL, js := newBroker(t, true)
	env := func(extra map[string]string) func(string) string {
		vars := map[string]string{"DATABASE_URL": dsn, "NATS_URL": natsURL, "HTTP_ADDR": "127.0.0.1:0",
			"CONSUMER_BACKOFF_BASE": "50ms", "CONSUMER_MAX_DELIVER": "3", "LOG_LEVEL": "warn", "DRILLS": "enabled"}
		for k, v := range extra {
			vars[k] = v
		}
		return func(k string) string { return vars[k] }
	}
	icfg, err := inventory.ConfigFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.New(context.Background(), icfg, telemetrytest.New(t, "inventory").Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	ocfg, err := order.ConfigFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	orderTel := telemetrytest.New(t, "order")
	ord, err := order.New(context.Background(), ocfg, orderTel.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	p := &pipeline{natsURL: natsURL, js: js, orderURL: "http://" + ord.Addr(), invURL: "http://" + inv.Addr(), orderTel: orderTel}
	p.stopInventory = testenv.RunService(t, "inventory", 30*time.Second, inv.Run, inv.Close)
	testenv.RunService(t, "order", 30*time.Second, ord.Run, ord.Close)
	return p
}

func (p *pipeline) place(t *testing.T, sku string) string {
	t.Helper()
	res, err := http.Post(p.orderURL+"/v1/orders", "application/json",
		strings.NewReader(fmt.Sprintf(`{"customer_id":"c","lines":[{"sku":%q,"quantity":1}]}`, sku)))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 202 {
		t.Fatalf("place: %d %v", res.StatusCode, err)
	}
	return body.ID
}

func (p *pipeline) trace(t *testing.T, id string) (result, ordertrace.Order) {
	t.Helper()
	r := loudly(t, "trace", id, "-json", "-nats", p.natsURL, "-order-url", p.orderURL, "-inventory-url", p.invURL, "-grafana", "http://grafana.test")
	var ot ordertrace.Order
	if err := json.Unmarshal([]byte(r.stdout), &ot); err != nil {
		t.Fatalf("trace -json: %v\nstdout %s\nstderr %s", err, r.stdout, r.stderr)
	}
	return r, ot
}

func (p *pipeline) waitStatus(t *testing.T, id, status string) {
	t.Helper()
	testenv.WaitFor(t, 15*time.Second, "order "+id+" to be "+status, func() bool {
		_, ot := p.trace(t, id)
		return ot.Status == status
	})
}

func hops(ot ordertrace.Order) map[string]ordertrace.Step {
	m := map[string]ordertrace.Step{}
	for _, s := range ot.Timeline {
		m[s.Hop] = s
	}
	return m
}

func TestTrace_FollowsAnOrderThroughEveryHop(t *testing.T) {
	p := startPipeline(t)

	t.Run("a confirmed order passes every hop", func(t *testing.T) {
		id := p.place(t, "BOOK-001")
		p.waitStatus(t, id, "confirmed")
		r, ot := p.trace(t, id)
		if r.code != exitOK {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		h := hops(ot)
		for hop, outcome := range map[string]string{
			ordertrace.HopAPI: "accepted", ordertrace.HopOrderOutbox: "published", ordertrace.HopOrdersStream: "stored", ordertrace.HopInventory: "reserved",
			ordertrace.HopInvOutbox: "published", ordertrace.HopResultsStream: "stored", ordertrace.HopSettlement: "confirmed",
		} {
			if h[hop].Outcome != outcome {
				t.Errorf("%s: %+v, want outcome %s", hop, h[hop], outcome)
			}
		}
		if ot.TraceID == "" || h[ordertrace.HopInventory].TraceID != ot.TraceID || !strings.Contains(ot.GrafanaURL, ot.TraceID) {
			t.Errorf("trace id %q, inventory's %q, link %s: want one trace and a link to it", ot.TraceID, h[ordertrace.HopInventory].TraceID, ot.GrafanaURL)
		}
		text := loudly(t, "trace", id, "-nats", p.natsURL, "-order-url", p.orderURL, "-inventory-url", p.invURL)
		if text.code != 0 || !strings.Contains(text.stdout, "order "+id+": confirmed") || !strings.Contains(text.stdout, "trace: http://localhost:3000/explore") {
			t.Errorf("text output:\n%s", text.stdout)
		}
	})

	// Against the running `loudly demo`, which has no Grafana: no link that opens nothing,
	// but where the trace id can be followed, its log files; a Grafana named still links.
	t.Run("against the demo, no dead link", func(t *testing.T) {
		id := p.place(t, "BOOK-001")
		p.waitStatus(t, id, "confirmed")
		dir := t.TempDir()
		state, err := json.Marshal(map[string]any{"pid": os.Getpid(), "nats_url": p.natsURL, "order_url": p.orderURL,
			"inventory_url": p.invURL, "log_dir": filepath.Join(dir, "logs")})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "demo.json"), state, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("LOUDLY_DEMO_DIR", dir)
		t.Setenv("NATS_URL", "")
		t.Setenv("GRAFANA_URL", "")
		r := loudly(t, "trace", id)
		if r.code != exitOK || strings.Contains(r.stdout, "http://") || !strings.Contains(r.stdout, "grep ") ||
			!strings.Contains(r.stdout, filepath.Join(dir, "logs", "*.log")) || !strings.Contains(r.stderr, "using the running demo's NATS server") {
			t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant no link, the demo's logs instead", r.code, r.stdout, r.stderr)
		}
		if r := loudly(t, "trace", id, "-grafana", "http://grafana.example:3000"); !strings.Contains(r.stdout, "trace: http://grafana.example:3000/explore") {
			t.Errorf("a Grafana named is linked:\n%s", r.stdout)
		}
	})

	t.Run("a rejected order says why", func(t *testing.T) {
		id := p.place(t, "SOLDOUT-001")
		p.waitStatus(t, id, "rejected")
		_, ot := p.trace(t, id)
		if s := hops(ot)[ordertrace.HopSettlement]; s.Outcome != "rejected" || s.Reason != "insufficient_stock" {
			t.Errorf("settlement %+v", s)
		}
	})

	t.Run("an order whose event was dead-lettered shows the letter", func(t *testing.T) {
		js := p.js
		if _, err := drill.Start(context.Background(), js, drill.SchemaDrift, "", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 10*time.Second, "the order service to see the fault", func() bool {
			return faultGauge(t, p.orderTel, drill.SchemaDrift) == 1
		})
		id := p.place(t, "MUG-001")
		// The relay publishes after the order commits: stopping the fault before then
		// would publish the event undrifted.
		testenv.WaitFor(t, 10*time.Second, "the order's event published", func() bool {
			_, ot := p.trace(t, id)
			return hops(ot)[ordertrace.HopOrderOutbox].Outcome == "published"
		})
		if err := faults.Stop(context.Background(), js, drill.SchemaDrift); err != nil {
			t.Fatal(err)
		}
		p.waitStatus(t, id, "failed")
		r, ot := p.trace(t, id)
		if r.code != exitOK {
			t.Errorf("a failed order is final: exit %d", r.code)
		}
		if s := hops(ot)[ordertrace.HopDeadLetters]; s.Outcome != "invalid" || s.Reason != "unknown_version" {
			t.Errorf("dead letter step %+v", s)
		}
	})

	t.Run("a stuck order names the hop it waits at", func(t *testing.T) {
		p.stopInventory()
		id := p.place(t, "BOOK-002")
		time.Sleep(500 * time.Millisecond) // published, and nobody consumes it
		r, ot := p.trace(t, id)
		if r.code != exitFailed || ot.StuckAt != ordertrace.HopInventory {
			t.Fatalf("exit %d, stuck at %q (%s); want 1 and %q", r.code, ot.StuckAt, ot.StuckWhy, ordertrace.HopInventory)
		}
		text := loudly(t, "trace", id, "-nats", p.natsURL, "-order-url", p.orderURL, "-inventory-url", p.invURL)
		if !strings.Contains(text.stdout, "STUCK at inventory consumer") {
			t.Errorf("text output does not name the hop:\n%s", text.stdout)
		}
	})

	t.Run("an unknown order is an error", func(t *testing.T) {
		r := loudly(t, "trace", "0b6f3d4e-7a1c-4d2e-9f00-000000000000", "-nats", p.natsURL, "-order-url", p.orderURL, "-inventory-url", p.invURL)
		if r.code != exitFailed || !strings.Contains(r.stderr, "not found") {
			t.Errorf("%+v", r)
		}
		if r := loudly(t, "trace", "nope"); r.code != exitUsage {
			t.Errorf("bad id: exit %d", r.code)
		}
	})
}

// faultGauge is the loudly.fault.active value a service exports for the fault name.
func faultGauge(t *testing.T, c *telemetrytest.Capture, name string) float64 {
	t.Helper()
	for _, sm := range c.Collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[float64]); ok && m.Name == "loudly.fault.active" {
				for _, dp := range g.DataPoints {
					if v, _ := dp.Attributes.Value("fault"); v.AsString() == name {
						return dp.Value
					}
				}
			}
		}
	}
	return 0
}

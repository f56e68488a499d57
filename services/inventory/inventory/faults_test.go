package inventory

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"loudly/internal/testenv"
	"loudly/pkg/faults"
	"loudly/services/drill"
	"loudly/services/events"
)

// Each drill fault acts where the drill says, and only while it is active.
func TestFaults_ActAsTheirDrillsDescribe(t *testing.T) {
	dsn := testenv.Postgres(t)
	h := newHarness(t, config(t, dsn, testenv.NATS(t), map[string]string{"CONSUMER_ACK_WAIT": "1s", "CONSUMER_MAX_DELIVER": "30"}), dsn)
	h.run(t)
	if v, ok := drillsEnabled(t, h); !ok || v != 1 {
		t.Errorf("loudly.drills.enabled{service=inventory} = %d (exported %v), want 1", v, ok)
	}
	if !warned(h) {
		t.Error("no warning at start-up that drills are enabled")
	}
	start := func(name string, intensity float64) {
		t.Helper()
		if _, err := drill.Start(context.Background(), h.js, name, "", intensity, time.Minute); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, name+" active", func() bool { _, ok := h.svc.drills.Get(name); return ok })
		t.Cleanup(func() { _ = faults.Stop(context.Background(), h.js, name) })
	}
	stop := func(name string) {
		t.Helper()
		if err := faults.Stop(context.Background(), h.js, name); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, name+" stopped", func() bool { _, ok := h.svc.drills.Get(name); return !ok })
	}

	t.Run("silent-skip acks as applied and does nothing", func(t *testing.T) {
		start(drill.SilentSkip, 1)
		before := h.available(t, "BOOK-001")
		env := h.publish(t, events.Line{SKU: "BOOK-001", Quantity: 1})
		d := h.waitDecision(t, env.ID, "applied")
		stop(drill.SilentSkip)
		if d["reason"] != "reserved" || h.available(t, "BOOK-001") != before {
			t.Errorf("decision %v, stock %d→%d: want a claimed reservation and untouched stock", d, before, h.available(t, "BOOK-001"))
		}
		time.Sleep(300 * time.Millisecond)
		if n := len(h.results(t, env.Key)); n != 0 {
			t.Errorf("%d result events: the skipped order must never be answered", n)
		}
	})
	t.Run("db-outage retries until it ends, then applies", func(t *testing.T) {
		start(drill.DBOutage, 1)
		env := h.publish(t, events.Line{SKU: "BOOK-002", Quantity: 1})
		d := h.waitDecision(t, env.ID, "retry")
		if d["reason"] != "db_unavailable" || d["settlement"] != "nak" {
			t.Errorf("decision %v", d)
		}
		stop(drill.DBOutage)
		h.waitDecision(t, env.ID, "applied")
	})
	t.Run("stock-out rejects the hot SKU", func(t *testing.T) {
		start(drill.StockOut, 1)
		env := h.publish(t, events.Line{SKU: "BOOK-001", Quantity: 1})
		if d := h.waitDecision(t, env.ID, "rejected"); d["reason"] != ReasonInsufficientStock {
			t.Errorf("decision %v", d)
		}
		stop(drill.StockOut)
	})
	t.Run("db-latency slows the transaction", func(t *testing.T) {
		start(drill.DBLatency, 0.3)
		begin := time.Now()
		env := h.publish(t, events.Line{SKU: "MUG-001", Quantity: 1})
		h.waitDecision(t, env.ID, "applied")
		if took := time.Since(begin); took < 300*time.Millisecond {
			t.Errorf("decided in %s with 0.3s of injected latency", took)
		}
		stop(drill.DBLatency)
	})
	t.Run("ack-timeout commits, overstays the ack wait, and the redelivery is a duplicate", func(t *testing.T) {
		start(drill.AckTimeout, 1)
		before := h.available(t, "SHIRT-S")
		env := h.publish(t, events.Line{SKU: "SHIRT-S", Quantity: 2})
		testenv.WaitFor(t, 5*time.Second, "the redelivery", func() bool {
			return len(h.tel.Decisions(map[string]string{"event_id": env.ID, "outcome": "duplicate"})) > 0
		})
		stop(drill.AckTimeout)
		if diff := before - h.available(t, "SHIRT-S"); diff != 2 {
			t.Errorf("stock reduced by %d, want 2 (once)", diff)
		}
	})
}

// Only the fault bucket switches faults on: nothing an event carries does.
func TestFaults_CannotBeSwitchedOnByAnEvent(t *testing.T) {
	h := startInventory(t)
	env, payload, _ := events.New(events.TypeOrderPlaced, newUUID(t), events.OrderPlaced{CustomerID: "c", Lines: []events.Line{{SKU: "BOOK-001", Quantity: 1}}}, time.Now())
	msg := nats.NewMsg(events.SubjectOrderPlaced)
	msg.Data = payload
	for _, k := range []string{"Loudly-Fault", "X-Loudly-Fault", "Fault", "Drill"} {
		msg.Header.Set(k, drill.SilentSkip)
	}
	if _, err := h.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(env.ID)); err != nil {
		t.Fatal(err)
	}
	h.waitDecision(t, env.ID, "applied")
	testenv.WaitFor(t, 5*time.Second, "the real result event", func() bool { return len(h.results(t, env.Key)) == 1 })
	if active, _ := faults.List(context.Background(), h.js); len(active) != 0 {
		t.Fatalf("faults active after an event asked for one: %+v", active)
	}
}

// With drills off (DRILLS unset, the default) the service never looks at the fault
// bucket: a silent-skip written there straight — by someone with write rights, since the
// drill command refuses — changes nothing, and the drill command says why.
func TestFaults_OffUnlessTheDeploymentEnablesDrills(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	h := newHarness(t, config(t, dsn, testenv.EmbeddedNATS(t).URL(), map[string]string{"DRILLS": ""}), dsn)
	h.run(t)
	if h.svc.drills != nil {
		t.Fatal("drills wired into the consumer although DRILLS is not enabled")
	}
	if _, err := h.js.KeyValue(ctx, faults.Bucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("the service created or opened the fault bucket: %v", err)
	}
	_, err := drill.Start(ctx, h.js, drill.SilentSkip, "", 1, time.Minute)
	if !errors.Is(err, drill.ErrNotAccepted) || !strings.Contains(err.Error(), "inventory does not accept drills") {
		t.Errorf("drill start against inventory without drills: %v", err)
	}
	if _, err := faults.Start(ctx, h.js, drill.SilentSkip, "", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	before := h.available(t, "BOOK-001")
	env := h.publish(t, events.Line{SKU: "BOOK-001", Quantity: 1})
	h.waitDecision(t, env.ID, "applied")
	testenv.WaitFor(t, 5*time.Second, "the result event", func() bool { return len(h.results(t, env.Key)) == 1 })
	if r := h.results(t, env.Key)[0]; r.Type != events.TypeInventoryReserved || h.available(t, "BOOK-001") != before-1 {
		t.Errorf("result %s, stock %d→%d: want a real reservation despite the fault in the bucket", r.Type, before, h.available(t, "BOOK-001"))
	}
	if v, ok := drillsEnabled(t, h); !ok || v != 0 {
		t.Errorf("loudly.drills.enabled{service=inventory} = %d (exported %v), want 0", v, ok)
	}
	if warned(h) {
		t.Error("warned that drills are enabled although they are not")
	}
}

// drillsEnabled reads the gauge loudly.drills.enabled{service=inventory}.
func drillsEnabled(t *testing.T, h *harness) (int64, bool) {
	t.Helper()
	for _, sm := range h.tel.Collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok && m.Name == "loudly.drills.enabled" {
				for _, dp := range g.DataPoints {
					if v, _ := dp.Attributes.Value("service"); v.AsString() == "inventory" {
						return dp.Value, true
					}
				}
			}
		}
	}
	return 0, false
}

// warned reports whether the service logged its start-up warning that drills are on.
func warned(h *harness) bool {
	for _, l := range h.tel.Logs() {
		if l["level"] == "WARN" && strings.Contains(fmt.Sprint(l["msg"]), "drills enabled") {
			return true
		}
	}
	return false
}

package inventory

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	start := func(name string, intensity float64) {
		t.Helper()
		if _, err := drill.Start(context.Background(), h.js, name, intensity, time.Minute); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, name+" active", func() bool { _, ok := h.svc.drills.faults.Get(name); return ok })
		t.Cleanup(func() { _ = faults.Stop(context.Background(), h.js, name) })
	}
	stop := func(name string) {
		t.Helper()
		if err := faults.Stop(context.Background(), h.js, name); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, name+" stopped", func() bool { _, ok := h.svc.drills.faults.Get(name); return !ok })
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

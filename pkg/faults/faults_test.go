package faults

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"loudly/internal/testenv"
	"loudly/pkg/telemetry/telemetrytest"
)

func gauge(t *testing.T, c *telemetrytest.Capture) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, sm := range c.Collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "loudly.fault.active" {
				for _, dp := range m.Data.(metricdata.Gauge[float64]).DataPoints {
					v, _ := dp.Attributes.Value("fault")
					out[v.AsString()] = dp.Value
				}
			}
		}
	}
	return out
}

func TestFaults_StartWatchExpireStop(t *testing.T) {
	nc, err := nats.Connect(testenv.EmbeddedNATS(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tel := telemetrytest.New(t, "inventory")
	w, err := Watch(ctx, js, tel.Meter())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a started fault reaches the watcher and its gauge", func(t *testing.T) {
		if _, err := Start(ctx, js, DBLatency, 0.25, 0); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, "the watcher to see db-latency", func() bool { _, ok := w.Get(DBLatency); return ok })
		if g := gauge(t, tel); g[DBLatency] != 0.25 || g[DBOutage] != 0 {
			t.Fatalf("gauge %v", g)
		}
	})
	t.Run("the silent fault has no gauge", func(t *testing.T) {
		if _, err := Start(ctx, js, SilentSkip, 1, 0); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, "silent-skip active", func() bool { return w.Hit(SilentSkip) })
		if _, ok := gauge(t, tel)[SilentSkip]; ok {
			t.Fatal("silent-skip is exported")
		}
	})
	t.Run("a fault started with a duration ends by itself", func(t *testing.T) {
		if _, err := Start(ctx, js, OutboxStall, 1, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, "outbox-stall active", func() bool { _, ok := w.Get(OutboxStall); return ok })
		testenv.WaitFor(t, 5*time.Second, "outbox-stall to expire", func() bool { _, ok := w.Get(OutboxStall); return !ok })
		if g := gauge(t, tel); g[OutboxStall] != 0 {
			t.Fatalf("gauge after expiry %v", g)
		}
		fs, _ := List(ctx, js)
		for _, f := range fs {
			if f.Name == OutboxStall {
				t.Fatal("expired fault still listed")
			}
		}
	})
	t.Run("stop switches it off", func(t *testing.T) {
		if err := Stop(ctx, js, DBLatency); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, "db-latency off", func() bool { _, ok := w.Get(DBLatency); return !ok })
		if err := Stop(ctx, js, DBLatency); err != nil {
			t.Fatalf("stopping twice: %v", err)
		}
	})
	t.Run("unknown faults and out-of-range intensities are refused", func(t *testing.T) {
		if _, err := Start(ctx, js, "rm-rf", 1, 0); err == nil {
			t.Error("unknown fault accepted")
		}
		if _, err := Start(ctx, js, DBOutage, 2, 0); err == nil {
			t.Error("intensity 2 accepted for a fraction")
		}
	})
}

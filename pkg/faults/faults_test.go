package faults

import (
	"context"
	"testing"
	"time"

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
	js := testenv.JetStream(t, testenv.EmbeddedNATS(t).URL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Faults named for what they would do: the package knows none of them.
	const latency, outage, stall, silent = "latency", "outage", "stall", "silent"
	tel := telemetrytest.New(t, "inventory")
	w, err := Watch(ctx, js, tel.Meter(), "inventory", []string{latency, outage, stall})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a started fault reaches the watcher and its gauge", func(t *testing.T) {
		if _, err := Start(ctx, js, latency, "", 0.25, 0); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, "the watcher to see latency", func() bool { _, ok := w.Get(latency); return ok })
		if g := gauge(t, tel); g[latency] != 0.25 || g[outage] != 0 {
			t.Fatalf("gauge %v", g)
		}
	})
	t.Run("a fault the watcher does not export acts, without a gauge", func(t *testing.T) {
		if _, err := Start(ctx, js, silent, "", 1, 0); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, "silent active", func() bool { return w.Hit(silent) })
		if _, ok := gauge(t, tel)[silent]; ok {
			t.Fatal("silent is exported")
		}
	})
	t.Run("a fault started with a duration ends by itself", func(t *testing.T) {
		if _, err := Start(ctx, js, stall, "", 1, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, "stall active", func() bool { _, ok := w.Get(stall); return ok })
		testenv.WaitFor(t, 5*time.Second, "stall to expire", func() bool { _, ok := w.Get(stall); return !ok })
		if g := gauge(t, tel); g[stall] != 0 {
			t.Fatalf("gauge after expiry %v", g)
		}
		fs, _ := List(ctx, js)
		for _, f := range fs {
			if f.Name == stall {
				t.Fatal("expired fault still listed")
			}
		}
	})
	t.Run("stop switches it off", func(t *testing.T) {
		if err := Stop(ctx, js, latency); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, "latency off", func() bool { _, ok := w.Get(latency); return !ok })
		if err := Stop(ctx, js, latency); err != nil {
			t.Fatalf("stopping twice: %v", err)
		}
	})
	t.Run("a fault meant for another service is off here", func(t *testing.T) {
		billing, err := Watch(ctx, js, telemetrytest.New(t, "billing").Meter(), "billing", []string{outage})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Start(ctx, js, outage, "billing", 1, 0); err != nil {
			t.Fatal(err)
		}
		// Both watchers follow one bucket in order: once billing's has the fault and a later
		// update (stall, started after it), inventory's has had both too.
		if _, err := Start(ctx, js, stall, "", 1, 0); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 5*time.Second, "billing to see outage", func() bool { _, ok := billing.Get(outage); return ok })
		testenv.WaitFor(t, 5*time.Second, "inventory to see the later stall", func() bool { _, ok := w.Get(stall); return ok })
		if _, ok := w.Get(outage); ok || gauge(t, tel)[outage] != 0 {
			t.Errorf("inventory acts on a fault meant for billing (gauge %v)", gauge(t, tel))
		}
		for _, name := range []string{outage, stall} {
			if err := Stop(ctx, js, name); err != nil {
				t.Fatal(err)
			}
		}
		testenv.WaitFor(t, 5*time.Second, "stall off", func() bool { _, ok := w.Get(stall); return !ok })
	})
	t.Run("a fault needs a name and an intensity of 0 or more", func(t *testing.T) {
		if _, err := Start(ctx, js, "", "", 1, 0); err == nil {
			t.Error("a fault without a name accepted")
		}
		if _, err := Start(ctx, js, outage, "", -1, 0); err == nil {
			t.Error("intensity -1 accepted")
		}
		if fs, _ := List(ctx, js); len(fs) != 1 || fs[0].Name != silent {
			t.Errorf("refused faults were stored: %+v", fs)
		}
	})
}

package drill_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"loudly/internal/testenv"
	"loudly/pkg/consumer"
	"loudly/pkg/env"
	"loudly/pkg/faults"
	"loudly/pkg/service"
	"loudly/pkg/telemetry/telemetrytest"
	"loudly/services/drill"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// open opens a service base "name" on a fresh database and the given broker, with DRILLS
// as given, and attaches the drills.
func open(t *testing.T, name, natsURL, drills string) (*service.Base, *drill.Drills, *telemetrytest.Capture) {
	t.Helper()
	vars := map[string]string{"DATABASE_URL": testenv.Postgres(t), "NATS_URL": natsURL, "HTTP_ADDR": "127.0.0.1:0",
		"SHUTDOWN_TIMEOUT": "5s", drill.Var: drills}
	r := env.New(func(k string) string { return vars[k] })
	cfg, dcfg := service.ConfigFromEnv(r, ":0"), drill.ConfigFromEnv(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	tel := telemetrytest.New(t, name)
	b, err := service.Open(context.Background(), service.Spec{Name: name, Schema: name}, cfg, tel.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	d, err := drill.Attach(b, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	return b, d, tel
}

// gauges returns the data points of an int or float gauge, by the value of attribute key.
func gauges(t *testing.T, tel *telemetrytest.Capture, name, key string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, sm := range tel.Collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch g := m.Data.(type) {
			case metricdata.Gauge[float64]:
				for _, dp := range g.DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key(key))
					out[v.AsString()] = dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range g.DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key(key))
					out[v.AsString()] = float64(dp.Value)
				}
			}
		}
	}
	return out
}

// A service that attaches the drills with DRILLS=enabled says so (gauge and one warning
// naming the service once), configures the fault bucket, answers Check, exports a gauge
// for every drill but the silent one, and acts on faults meant for it only.
func TestAttach_Enabled(t *testing.T) {
	url := testenv.EmbeddedNATS(t).URL()
	b, d, tel := open(t, "billing", url, "enabled")
	if d == nil {
		t.Fatal("DRILLS=enabled attached no drills")
	}
	if g := gauges(t, tel, "loudly.drills.enabled", "service"); g["billing"] != 1 {
		t.Errorf("loudly.drills.enabled %v, want billing=1", g)
	}
	var warnings []string
	for _, l := range tel.LogLines() {
		if strings.Contains(l, `"level":"WARN"`) && strings.Contains(l, "drills enabled") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 || strings.Count(warnings[0], `"service":"billing"`) != 1 {
		t.Errorf("want one start-up warning naming the service once, got %d:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
	kv, err := b.JS.KeyValue(context.Background(), faults.Bucket)
	if err != nil {
		t.Fatalf("the fault bucket was not configured: %v", err)
	}
	if st, err := kv.Status(context.Background()); err != nil || st.History() != 1 {
		t.Errorf("fault bucket status %v, %v", st, err)
	}
	exported := slices.Sorted(func(yield func(string) bool) {
		for k := range gauges(t, tel, "loudly.fault.active", "fault") {
			if !yield(k) {
				return
			}
		}
	})
	if want := slices.Sorted(slices.Values(drill.Exported())); !slices.Equal(exported, want) {
		t.Errorf("fault gauges %v, want %v", exported, want)
	}

	// The generic consumer pieces act on a drill started in this service, not on one
	// started in another: db-outage in inventory leaves billing alone, in billing it fails
	// billing's messages with a retry.
	h := consumer.Chain(func(context.Context, *consumer.Message) consumer.Result { return consumer.Applied("billed") },
		d.Consumer("billed", time.Second)...)
	decide := func() consumer.Result { return h(context.Background(), &consumer.Message{}) }
	if _, err := drill.Accept(b.NC, "inventory"); err != nil { // an inventory with drills, as far as Check knows
		t.Fatal(err)
	}
	if _, err := drill.Start(context.Background(), b.JS, drill.DBOutage, "", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := drill.Start(context.Background(), b.JS, drill.OutboxStall, "billing", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Started after db-outage: once billing sees it, it has seen db-outage too.
	testenv.WaitFor(t, 5*time.Second, "billing to see outbox-stall", func() bool { _, ok := d.Get(drill.OutboxStall); return ok })
	if res := decide(); res.Reason() != "billed" {
		t.Errorf("db-outage started in inventory decided billing's message: %s/%s", res.Outcome(), res.Reason())
	}
	if _, err := drill.Start(context.Background(), b.JS, drill.DBOutage, "billing", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "db-outage in billing", func() bool { return decide().Reason() == "db_unavailable" })
	if res := decide(); !errors.Is(res.Err(), drill.ErrInjectedOutage) {
		t.Errorf("db-outage result %s/%s: %v", res.Outcome(), res.Reason(), res.Err())
	}
}

// With drills off (the default) Attach returns nil, every piece is a no-op, and the
// service never touches the fault bucket.
func TestAttach_Disabled(t *testing.T) {
	url := testenv.EmbeddedNATS(t).URL()
	b, d, tel := open(t, "billing", url, "")
	if d != nil {
		t.Fatal("drills attached although DRILLS is not enabled")
	}
	if g := gauges(t, tel, "loudly.drills.enabled", "service"); g["billing"] != 0 {
		t.Errorf("loudly.drills.enabled %v, want billing=0", g)
	}
	if _, err := b.JS.KeyValue(context.Background(), faults.Bucket); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("the service created or opened the fault bucket: %v", err)
	}
	if mws := d.Consumer("billed", time.Second); mws != nil || d.Hit(drill.DBOutage) {
		t.Error("a nil *Drills gave middleware or a hit")
	}
}

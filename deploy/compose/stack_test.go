package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/internal/testenv"
	envreader "loudly/pkg/env"
	"loudly/pkg/envelope"
	"loudly/pkg/telemetry"
	"loudly/services/events"
	"loudly/services/inventory/inventory"
	"loudly/services/order/order"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The telemetry path of the compose demo, run for real without Docker: the collector
// built with exactly the compose config's components runs otel-collector/config.yaml
// (only hostnames and ports substituted) in front of stand-ins for Tempo (OTLP/gRPC) and
// Loki (its push API and its OTLP endpoint); the order and inventory services run with
// the environment docker-compose.yml gives them (only hostnames substituted) against a
// real PostgreSQL and NATS, and take a load of orders and poison. Then:
//
//   - every decision log line reaches Loki exactly once, in the compose configuration
//     (pushed by the services) and in the other one it keeps working (OTLP through the
//     collector), over OTLP/HTTP as the compose file sets it and over OTLP/gRPC
//     (OTEL_EXPORTER_OTLP_PROTOCOL=grpc to the collector's 4317);
//   - spans, metrics and logs leave the collector, and its own metrics count nothing
//     refused, dropped or failed.
func TestStack_TelemetryLeavesTheCollectorAndEachLogLineReachesLokiOnce(t *testing.T) {
	project := loadProject(t)
	dsn, natsURL := testenv.Postgres(t), testenv.EmbeddedNATS(t).URL()
	tempo, loki := testenv.StartTraceStore(t), testenv.StartLogStore(t)
	otlpHTTP, otlpGRPC, health := testenv.FreeAddr(t), testenv.FreeAddr(t), testenv.FreeAddr(t)
	promExp, self := testenv.FreeAddr(t), testenv.FreeAddr(t)
	selfPort := self[strings.LastIndex(self, ":")+1:]
	logTail := testenv.StartCollector(t, collectorConfig, map[string]string{
		"0.0.0.0:4317":     otlpGRPC,
		"0.0.0.0:4318":     otlpHTTP,
		"0.0.0.0:13133":    health,
		"0.0.0.0:8889":     promExp,
		"host: 0.0.0.0":    "host: 127.0.0.1",
		"port: 8888":       "port: " + selfPort,
		"tempo:4317":       tempo.Addr,
		"http://loki:3100": loki.URL,
	}, "http://"+health+"/")

	// The services' environment from the compose file, pointed at this machine.
	hosts := strings.NewReplacer("http://otel-collector:4318", "http://"+otlpHTTP, "http://loki:3100", loki.URL)
	composeEnv := func(service string) map[string]string {
		env := map[string]string{}
		for k, v := range project.Services[service].Environment {
			if v != nil {
				env[k] = hosts.Replace(*v)
			}
		}
		env["DATABASE_URL"], env["NATS_URL"], env["HTTP_ADDR"] = dsn, natsURL, "127.0.0.1:0"
		return env
	}
	// The SDK's exporters read OTEL_* from the process environment; short intervals so the
	// test need not wait for the defaults.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+otlpHTTP)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
	t.Setenv("OTEL_BLRP_SCHEDULE_DELAY", "200")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "1000")

	otlpLogs := map[string]string{"LOKI_URL": "", "OTEL_LOGS_EXPORTER": ""}
	for _, c := range []struct {
		name   string
		change map[string]string // on top of the compose environment
		path   string            // where Loki must get the lines
		grpc   bool              // export over OTLP/gRPC instead
	}{
		{"compose configuration: the services push to Loki", nil, "/loki/api/v1/push", false},
		{"the other path: OTLP logs through the collector", otlpLogs, "/otlp/v1/logs", false},
		{"every signal over OTLP/gRPC", otlpLogs, "/otlp/v1/logs", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(loki.Lines())
			overGRPC := acceptedOverGRPC(t, "http://"+self+"/metrics")
			if c.grpc {
				// The exporters read the process environment; FromEnv reads the same choice.
				t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+otlpGRPC)
				t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
				c.change = maps.Clone(c.change)
				c.change["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
			}
			decisions := runLoad(t, composeEnv, c.change, natsURL)
			if len(decisions) < 20 {
				t.Fatalf("only %d decision lines on stdout", len(decisions))
			}
			// Every decision the services logged, counted in Loki by trace, span and
			// what was decided.
			count := func() map[string]int {
				got := map[string]int{}
				for _, l := range loki.Lines()[before:] {
					if k, ok := decisionKey(l); ok {
						got[k]++
					}
				}
				return got
			}
			testenv.WaitFor(t, 20*time.Second, "every decision line in Loki", func() bool {
				got := count()
				for k := range decisions {
					if got[k] == 0 {
						return false
					}
				}
				return true
			})
			time.Sleep(2 * time.Second) // a second copy would have arrived by now
			paths := map[string]int{}
			for _, l := range loki.Lines()[before:] {
				paths[l.Path]++
			}
			for k, n := range count() {
				if !decisions[k] {
					t.Errorf("Loki has a decision line no service logged: %s", k)
				} else if n != 1 {
					t.Errorf("decision %s is stored %d times in Loki", k, n)
				}
			}
			if len(paths) != 1 || paths[c.path] == 0 {
				t.Errorf("Loki received lines on %v, want only %s", paths, c.path)
			}
			t.Logf("%d decision lines, each once in Loki; lines per endpoint %v", len(decisions), paths)
			// The collector counts what its receiver took by transport: over gRPC, every
			// signal arrived there in this case, and none in the others.
			after := acceptedOverGRPC(t, "http://"+self+"/metrics")
			for _, signal := range []string{"spans", "metric_points", "log_records"} {
				if got := after[signal] - overGRPC[signal]; c.grpc != (got > 0) {
					t.Errorf("the collector accepted %g %s over gRPC in this case (grpc=%v)", got, signal, c.grpc)
				}
			}
		})
	}

	// What left the collector, and what its own metrics say about it.
	spans, traces := tempo.Spans()
	if spans == 0 {
		t.Errorf("no span reached the trace store; collector log:\n%s", logTail())
	}
	exported := scrape(t, "http://"+promExp+"/metrics")
	if !strings.Contains(exported, "otlp_loudly_decisions_total") {
		t.Errorf("the collector's Prometheus exporter has no otlp_loudly_decisions_total")
	}
	own := scrape(t, "http://"+self+"/metrics")
	sums := map[string]float64{}
	for _, line := range strings.Split(own, "\n") {
		if strings.HasPrefix(line, "otelcol_") {
			var v float64
			name := line[:strings.IndexAny(line, "{ ")]
			if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err == nil {
				sums[strings.TrimSuffix(name, "_total")] += v
			}
		}
	}
	for _, sent := range []string{"otelcol_exporter_sent_spans", "otelcol_exporter_sent_metric_points", "otelcol_exporter_sent_log_records"} {
		if sums[sent] == 0 {
			t.Errorf("%s = 0: nothing left the collector on that pipeline", sent)
		}
	}
	// Everything the receiver accepted was sent on (the failure counters of the exporters
	// appear only once something failed).
	for _, signal := range []string{"spans", "log_records"} {
		if a, s := sums["otelcol_receiver_accepted_"+signal], sums["otelcol_exporter_sent_"+signal]; a != s {
			t.Errorf("the collector accepted %g %s and sent %g", a, signal, s)
		}
	}
	var failed []string
	for name, v := range sums {
		if v != 0 && (strings.Contains(name, "failed") || strings.Contains(name, "refused") || strings.Contains(name, "dropped")) {
			failed = append(failed, fmt.Sprintf("%s=%g", name, v))
		}
	}
	if len(failed) > 0 {
		t.Errorf("the collector failed, refused or dropped telemetry: %v; log:\n%s", failed, logTail())
	}
	t.Logf("collector: %g spans (%d traces at the trace store), %g metric points, %g log records sent; %d otelcol_* series, none failed, refused or dropped",
		sums["otelcol_exporter_sent_spans"], traces, sums["otelcol_exporter_sent_metric_points"], sums["otelcol_exporter_sent_log_records"], len(sums))
}

// runLoad runs order and inventory with their compose environment (plus change), sends
// orders and poison through them, stops them (flushing their telemetry) and returns the
// keys of the decision lines they wrote to stdout.
func runLoad(t *testing.T, composeEnv func(string) map[string]string, change map[string]string, natsURL string) map[string]bool {
	var mu sync.Mutex
	var stdout bytes.Buffer
	t.Run("load", func(t *testing.T) {
		start := func(name string) (*telemetry.Telemetry, func(string) string) {
			env := composeEnv(name)
			for k, v := range change {
				env[k] = v
			}
			getenv := func(k string) string { return env[k] }
			r := envreader.New(getenv)
			cfg := telemetry.FromEnv(telemetry.Config{ServiceName: name, LogWriter: lockedWriter{&mu, &stdout}}, r)
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			tel, err := telemetry.Setup(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// After the service stops: flush what it exported. Not Shutdown: the NATS
			// client's callbacks may still log after it, and the Loki sink pushes what
			// it holds within its batch wait (1s) anyway.
			t.Cleanup(func() {
				_ = tel.TracerProvider.ForceFlush(context.Background())
				_ = tel.MeterProvider.ForceFlush(context.Background())
				if tel.LoggerProvider != nil {
					_ = tel.LoggerProvider.ForceFlush(context.Background())
				}
			})
			return tel, getenv
		}
		invTel, invEnv := start("inventory")
		invCfg, err := inventory.ConfigFromEnv(invEnv)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := inventory.New(context.Background(), invCfg, invTel)
		if err != nil {
			t.Fatal(err)
		}
		testenv.RunService(t, "inventory", 30*time.Second, inv.Run, inv.Close)
		ordTel, ordEnv := start("order")
		ordCfg, err := order.ConfigFromEnv(ordEnv)
		if err != nil {
			t.Fatal(err)
		}
		svc, err := order.New(context.Background(), ordCfg, ordTel)
		if err != nil {
			t.Fatal(err)
		}
		testenv.RunService(t, "order", 30*time.Second, svc.Run, svc.Close)

		// The load: orders (some for an unknown SKU, some malformed) and poison published
		// straight to the stream.
		var ids []string
		for i := range 40 {
			body := `{"customer_id":"c-1","lines":[{"sku":"BOOK-001","quantity":1}]}`
			switch {
			case i%10 == 3:
				body = strings.Replace(body, "BOOK-001", "NOPE-1", 1)
			case i%10 == 7:
				body = `{"customer_id":1}`
			}
			res, err := http.Post("http://"+svc.Addr()+"/v1/orders", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			var created struct{ ID string }
			_ = json.NewDecoder(res.Body).Decode(&created)
			res.Body.Close()
			if res.StatusCode == http.StatusAccepted {
				ids = append(ids, created.ID)
			}
		}
		nc, err := nats.Connect(natsURL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		for i := range 3 {
			m := nats.NewMsg(events.SubjectOrderPlaced)
			m.Data = []byte(`{"id":`)
			if _, err := js.PublishMsg(context.Background(), m, jetstream.WithMsgID(fmt.Sprintf("stack-poison-%s-%d", t.Name(), i))); err != nil {
				t.Fatal(err)
			}
		}
		testenv.WaitFor(t, 30*time.Second, "every accepted order settled", func() bool {
			for _, id := range ids {
				res, err := http.Get("http://" + svc.Addr() + "/v1/orders/" + id)
				if err != nil {
					return false
				}
				var o struct{ Status string }
				_ = json.NewDecoder(res.Body).Decode(&o)
				res.Body.Close()
				if o.Status == "pending" {
					return false
				}
			}
			return true
		})
		testenv.WaitFor(t, 10*time.Second, "the poison decided", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return strings.Count(stdout.String(), `"outcome":"invalid","reason":"`+envelope.ReasonMalformed+`"`) >= 3
		})
	})
	if t.Failed() {
		t.FailNow()
	}
	mu.Lock()
	defer mu.Unlock()
	keys := map[string]bool{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if k, ok := decisionKey(testenv.LogLine{Line: line}); ok {
			keys[k] = true
		}
	}
	return keys
}

// decisionKey identifies a decision log line by trace, span, stage, outcome and reason,
// whichever path it came by: a pushed JSON line, or an OTLP record whose body is the
// message and whose attributes are the fields.
func decisionKey(l testenv.LogLine) (string, bool) {
	f := l.Attrs
	traceID, spanID := l.TraceID, l.SpanID
	if l.Line != "decision" {
		var j map[string]any
		if json.Unmarshal([]byte(l.Line), &j) != nil || j["msg"] != "decision" {
			return "", false
		}
		f = map[string]string{}
		for k, v := range j {
			f[k] = fmt.Sprint(v)
		}
		traceID, spanID = f["trace_id"], f["span_id"]
	}
	return strings.Join([]string{traceID, spanID, f["stage"], f["outcome"], f["reason"], f["event_id"]}, "/"), true
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// acceptedOverGRPC reads the collector's own metrics at url: what its OTLP receiver
// accepted over gRPC, by signal ("spans", "metric_points", "log_records").
func acceptedOverGRPC(t *testing.T, url string) map[string]float64 {
	t.Helper()
	got := map[string]float64{}
	for _, line := range strings.Split(scrape(t, url), "\n") {
		signal, ok := strings.CutPrefix(line, "otelcol_receiver_accepted_")
		if !ok || !strings.Contains(line, `transport="grpc"`) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v); err == nil {
			got[strings.TrimSuffix(signal[:strings.IndexAny(signal, "{ ")], "_total")] += v
		}
	}
	return got
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

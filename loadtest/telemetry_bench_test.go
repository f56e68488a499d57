package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"loudly/internal/testenv"
	"loudly/loadtest/load"
)

// BenchmarkPipelineTelemetry measures the whole pipeline (both services as processes, real
// PostgreSQL and JetStream) under the same load twice: with every exporter off, and with
// telemetry fully on (OTLP traces, metrics and logs to a receiver, logs pushed to a Loki
// endpoint). It reports the pipeline's settled orders per second and the settlement
// latency of each, so the cost of telemetry is one ratio:
//
//	go test -run '^$' -bench PipelineTelemetry -benchtime 1x ./loadtest/
//
// LOUDLY_BENCH_RATE and LOUDLY_BENCH_DURATION change the load (default 600/s for 20s).
func BenchmarkPipelineTelemetry(b *testing.B) {
	rate, dur := 600.0, 20*time.Second
	if v := envFloat("LOUDLY_BENCH_RATE"); v > 0 {
		rate = v
	}
	if v := envDuration("LOUDLY_BENCH_DURATION"); v > 0 {
		dur = v
	}
	bin := buildServices(b)
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("telemetry=%s", map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) {
			for range b.N {
				s := pipelineOnce(b, bin, on, rate, dur)
				b.ReportMetric(s.SettledPerSec, "settled/s")
				b.ReportMetric(float64(s.P50.Milliseconds()), "p50_ms")
				b.ReportMetric(float64(s.P99.Milliseconds()), "p99_ms")
				b.Logf("%s", s)
			}
		})
	}
}

func pipelineOnce(b *testing.B, bin string, telemetryOn bool, rate float64, dur time.Duration) load.Summary {
	b.Helper()
	b.StopTimer()
	env := []string{
		"DATABASE_URL=" + testenv.Postgres(b), "NATS_URL=" + testenv.EmbeddedNATS(b).URL(),
		"LOG_LEVEL=info", "SHUTDOWN_TIMEOUT=10s",
	}
	if telemetryOn {
		receiver := testenv.OTLPReceiver(b)
		loki := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		b.Cleanup(loki.Close)
		env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+receiver.URL, "LOKI_URL="+loki.URL+"/loki/api/v1/push")
	}
	order := startService(b, filepath.Join(bin, "order"), env)
	inventory := startService(b, filepath.Join(bin, "inventory"), env)
	order.waitReady(b, 30*time.Second)
	inventory.waitReady(b, 30*time.Second)
	b.StartTimer()
	var stdout, stderr bytes.Buffer
	s, err := run(b.Context(), config{
		URL: "http://" + order.addr, Rate: rate, Duration: dur,
		Verify: true, Timeout: 3 * time.Minute, Concurrency: 128,
	}, &stdout, &stderr)
	b.StopTimer()
	if err != nil {
		b.Fatalf("run: %v\n%s", err, stderr.String())
	}
	return s
}

func envFloat(name string) float64 {
	var v float64
	_, _ = fmt.Sscan(os.Getenv(name), &v)
	return v
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

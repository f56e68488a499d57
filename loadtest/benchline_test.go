package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"loudly/internal/testenv"
)

// benchLine is what `make bench` found, printed as one line: the pipeline's figures next
// to PostgreSQL's limit for the same work, measured in the same run on the same machine,
// so the ratios mean something even when the machine is busy and the absolute figures do
// not.
type benchLine struct {
	PgbenchTPS  float64 // the accept transaction, 8 clients, before the pipeline runs
	PgbenchTPS2 float64 // the same after them
	Saturated   float64 // settled/s, telemetry on, offered well above capacity
	Offered     float64 // the rate offered at saturation (BENCH_RATE)
	// Unsaturated counts the saturated phases that settled at least keptUp of what was
	// offered: above 0, their figures are the offered rate, not the pipeline's.
	Unsaturated   int
	HalfRate      float64       // the rate offered for the latency run: Saturated/2
	HalfSettled   float64       // settled/s at that rate
	P50, P99      time.Duration // accept→settled at that rate, after the warm-up
	WarmupP99     time.Duration // accept→settled of the orders sent in the warm-up
	SaturatedOff  float64       // settled/s, telemetry off
	SaturatedOff2 float64       // settled/s, telemetry off again, right after
	SaturatedOn2  float64       // settled/s, telemetry on again after the off runs
	SaturatedOn3  float64       // settled/s, telemetry on a third time, right after
	SaturatedOff3 float64       // settled/s, telemetry off a third time, last
	Lost          int           // over every pipeline run: must be 0
	// SpansDropped is what the services counted as not exported over the runs with
	// telemetry on (loudly_telemetry_spans_dropped_total): above 0, the on runs did less
	// work than the figures claim, and exemplars point at traces that were never stored.
	SpansDropped int64
	// CPU time both services spent per settled order at saturation: the mean of the on
	// runs, and of the off runs. A steadier view of telemetry's cost than settled/s.
	CPUPerOrderOn, CPUPerOrderOff time.Duration
	// The machine's single-core speed (cpuSpeed) at the start of the slowest and the
	// fastest pipeline phase, MB/s: the same work measured far apart means the machine
	// itself changed speed during the run.
	SpeedMin, SpeedMax float64
	Env                []string // service settings passed through, NAME=value
}

// sawSpeed records the machine speed at the start of a phase.
func (l *benchLine) sawSpeed(mbs float64) {
	if l.SpeedMin == 0 || mbs < l.SpeedMin {
		l.SpeedMin = mbs
	}
	l.SpeedMax = max(l.SpeedMax, mbs)
}

// Limit is PostgreSQL's accept tx/s: the mean of the runs before and after the pipeline
// (the one run there is, if the bench stopped early).
func (l benchLine) Limit() float64 {
	if l.PgbenchTPS2 == 0 {
		return l.PgbenchTPS
	}
	return (l.PgbenchTPS + l.PgbenchTPS2) / 2
}

// Ratio is the pipeline's settled/s over PostgreSQL's accept tx/s.
func (l benchLine) Ratio() float64 { return ratio(l.Saturated, l.Limit()) }

// TelemetryOnOff compares settled/s with telemetry on and off: the mean of the on runs
// over the mean of the off runs. The runs go on, off, off, on, on, off: a machine that
// gets busier or quieter during the bench moves both means about alike (each setting's
// runs sit at positions summing to 10 and 11), and three runs of each cut the weight of
// one unlucky run to a third (two runs of one setting differed by up to 29% on a 2-core
// machine, 2026-12-06). A bench that stopped early compares the runs it has.
func (l benchLine) TelemetryOnOff() float64 {
	return ratio(mean(l.onRuns()), mean(l.offRuns()))
}

func (l benchLine) onRuns() []float64 { return measured(l.Saturated, l.SaturatedOn2, l.SaturatedOn3) }
func (l benchLine) offRuns() []float64 {
	return measured(l.SaturatedOff, l.SaturatedOff2, l.SaturatedOff3)
}

// RepeatSpread is how far the runs of one setting differ, the slowest from the fastest
// relative to their mean, the larger for the on and the off runs: the noise floor of
// this run. A telemetry cost smaller than it is not measured.
func (l benchLine) RepeatSpread() float64 {
	return max(spread(l.onRuns()), spread(l.offRuns()))
}

// measured is the runs that produced a figure (a bench that stopped early has zeros).
func measured(runs ...float64) []float64 {
	return slices.DeleteFunc(runs, func(v float64) bool { return v == 0 })
}

func mean(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	var sum float64
	for _, v := range vs {
		sum += v
	}
	return sum / float64(len(vs))
}

func spread(vs []float64) float64 {
	if len(vs) < 2 {
		return 0
	}
	return (slices.Max(vs) - slices.Min(vs)) / mean(vs)
}

func cpuMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// String is the summary line; the lead fields come first, in a fixed order.
func (l benchLine) String() string {
	env := "default"
	if len(l.Env) > 0 {
		env = strings.Join(l.Env, ",")
	}
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	return fmt.Sprintf("bench: pgbench_tps=%s saturated_settled_per_s=%s ratio=%s half_rate=%s p50_ms=%s p99_ms=%s telemetry_on_off=%s lost=%d"+
		" spans_dropped=%d half_settled_per_s=%s telemetry_off_settled_per_s=%s telemetry_off_again_settled_per_s=%s telemetry_on_again_settled_per_s=%s"+
		" telemetry_on_third_settled_per_s=%s telemetry_off_third_settled_per_s=%s repeat_spread=%s"+
		" cpu_ms_per_order_on=%s cpu_ms_per_order_off=%s half_warmup_p99_ms=%s pgbench_tps_before_after=%s/%s"+
		" machine_speed_mb_s_min_max=%s/%s offered_per_s=%s unsaturated_phases=%d env=%s",
		f(l.Limit(), 1), f(l.Saturated, 1), f(l.Ratio(), 3), f(l.HalfRate, 1), ms(l.P50), ms(l.P99), f(l.TelemetryOnOff(), 3), l.Lost, l.SpansDropped,
		f(l.HalfSettled, 1), f(l.SaturatedOff, 1), f(l.SaturatedOff2, 1), f(l.SaturatedOn2, 1),
		f(l.SaturatedOn3, 1), f(l.SaturatedOff3, 1), f(l.RepeatSpread(), 3),
		cpuMS(l.CPUPerOrderOn), cpuMS(l.CPUPerOrderOff), ms(l.WarmupP99), f(l.PgbenchTPS, 1), f(l.PgbenchTPS2, 1),
		f(l.SpeedMin, 0), f(l.SpeedMax, 0), f(l.Offered, 0), l.Unsaturated, env)
}

// Service settings the bench passes from its own environment to both services, so that
// `CONSUMER_BATCH_SIZE=1 make bench` and `make bench` can be compared, and so can the
// SDK's telemetry knobs (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc make bench`,
// OTEL_EXPORTER_OTLP_COMPRESSION=gzip, the batch processor's OTEL_BSP_*, span and
// attribute limits, the sampler). Everything else the services read is set by the bench
// (or, like GOMAXPROCS and GOGC, inherited as it is by every child process); so are the
// OTLP endpoints, which point at the bench's own receiver.
var (
	passThroughPrefixes = []string{"CONSUMER_", "OUTBOX_", "OTEL_BSP_", "OTEL_BLRP_", "OTEL_METRIC_EXPORT_",
		"OTEL_EXPORTER_OTLP_", "OTEL_SPAN_", "OTEL_ATTRIBUTE_", "OTEL_TRACES_SAMPLER"}
	passThroughNames = []string{"ACCEPT_COMMITTERS", "DB_MAX_CONNS", "DB_MIN_CONNS", "LOG_LEVEL", "GOMAXPROCS", "GOGC", "GOMEMLIMIT"}
)

// serviceSettings picks the pass-through settings out of environ, sorted by name.
func serviceSettings(environ []string) []string {
	var out []string
	for _, kv := range environ {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if strings.HasPrefix(k, "OTEL_EXPORTER_OTLP_") && strings.HasSuffix(k, "ENDPOINT") {
			continue // the bench's receiver, not the developer's collector
		}
		if slices.Contains(passThroughNames, k) || slices.ContainsFunc(passThroughPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			out = append(out, kv)
		}
	}
	slices.Sort(out)
	return out
}

// benchWarmup is BENCH_WARMUP: how long the half-rate phase runs before its latency is
// measured (3s; 0s measures from the first order).
func benchWarmup(t testing.TB) time.Duration {
	t.Helper()
	v := os.Getenv("BENCH_WARMUP")
	if v == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		t.Fatalf("BENCH_WARMUP=%q: want a duration of at least 0s, such as 3s", v)
	}
	return d
}

// benchDuration, benchFloat and benchInt read a knob of the bench from the environment;
// a bad value stops the run before anything is measured.
func benchDuration(t testing.TB, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 15s", name, v)
	}
	return d
}

func benchFloat(t testing.TB, name string, def float64) float64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f > 0) {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return f
}

func benchInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func TestBenchLine_String(t *testing.T) {
	l := benchLine{PgbenchTPS: 2600.04, PgbenchTPS2: 2752, Saturated: 245.0, HalfRate: 122.5, HalfSettled: 121.96,
		P50: 9512 * time.Millisecond, P99: 15 * time.Second, SaturatedOff: 260, SaturatedOff2: 250, SaturatedOn2: 255,
		SaturatedOn3: 250, SaturatedOff3: 255,
		CPUPerOrderOn: 2345 * time.Microsecond, CPUPerOrderOff: 1900 * time.Microsecond, WarmupP99: 16400 * time.Millisecond,
		SpansDropped: 7, Offered: 4014.2, Unsaturated: 1, Env: []string{"CONSUMER_BATCH_SIZE=1", "DB_MAX_CONNS=40"}}
	for _, mbs := range []float64{1500.4, 1210.2, 1620.7} {
		l.sawSpeed(mbs)
	}
	want := "bench: pgbench_tps=2676.0 saturated_settled_per_s=245.0 ratio=0.092 half_rate=122.5 p50_ms=9512.0 p99_ms=15000.0" +
		" telemetry_on_off=0.980 lost=0 spans_dropped=7 half_settled_per_s=122.0 telemetry_off_settled_per_s=260.0" +
		" telemetry_off_again_settled_per_s=250.0 telemetry_on_again_settled_per_s=255.0" +
		" telemetry_on_third_settled_per_s=250.0 telemetry_off_third_settled_per_s=255.0 repeat_spread=0.040" +
		" cpu_ms_per_order_on=2.35 cpu_ms_per_order_off=1.90" +
		" half_warmup_p99_ms=16400.0 pgbench_tps_before_after=2600.0/2752.0 machine_speed_mb_s_min_max=1210/1621" +
		" offered_per_s=4014 unsaturated_phases=1 env=CONSUMER_BATCH_SIZE=1,DB_MAX_CONNS=40"
	if got := l.String(); got != want {
		t.Errorf("bench line:\n got %s\nwant %s", got, want)
	}
	// Nothing measured (a run that failed early) must still print, with zero ratios.
	if got := (benchLine{Lost: 3}).String(); !strings.Contains(got, " ratio=0.000 ") || !strings.Contains(got, " lost=3 ") ||
		!strings.Contains(got, "telemetry_on_off=0.000") || !strings.HasSuffix(got, " env=default") {
		t.Errorf("empty bench line = %s", got)
	}
	// A run that stopped after the first off run compares with it alone.
	if got := (benchLine{Saturated: 200, SaturatedOn2: 200, SaturatedOff: 250}).TelemetryOnOff(); got != 0.8 {
		t.Errorf("TelemetryOnOff with one off run = %v, want 0.8", got)
	}
	// Three runs of each: the ratio of the means, and the widest spread of one setting.
	three := benchLine{Saturated: 300, SaturatedOn2: 240, SaturatedOn3: 300, SaturatedOff: 300, SaturatedOff2: 310, SaturatedOff3: 290}
	if got, want := three.TelemetryOnOff(), 280.0/300; math.Abs(got-want) > 1e-12 {
		t.Errorf("TelemetryOnOff of three runs each = %v, want %v", got, want)
	}
	if got, want := three.RepeatSpread(), 60.0/280; math.Abs(got-want) > 1e-12 {
		t.Errorf("RepeatSpread of three runs each = %v, want %v (the on runs: 240 to 300 around 280)", got, want)
	}
	// A run that stopped before the second pgbench compares with the first alone.
	if got := (benchLine{PgbenchTPS: 1000, Saturated: 100}).String(); !strings.HasPrefix(got, "bench: pgbench_tps=1000.0 saturated_settled_per_s=100.0 ratio=0.100 ") {
		t.Errorf("bench line with one pgbench run = %s", got)
	}
}

func TestServiceSettings(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin", "HOME=/root",
		"DB_MAX_CONNS=40", "CONSUMER_CONCURRENCY=16", "CONSUMER_BATCH_SIZE=64", "CONSUMER_BATCH_WAIT=5ms",
		"OUTBOX_BATCH_SIZE=500", "OTEL_BSP_MAX_QUEUE_SIZE=8192", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_EXPORTER_OTLP_COMPRESSION=gzip", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=64",
		// The bench decides these for each run; a developer's shell must not.
		"DATABASE_URL=postgres://elsewhere/db", "NATS_URL=nats://elsewhere:4222", "HTTP_ADDR=:9999",
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://tempo:4318/v1/traces",
		"LOKI_URL=http://loki:3100",
		// Gone: the bench does not carry it to services that no longer read it.
		"TELEMETRY_SPAN_ENCODER=sdk",
	}
	want := []string{"CONSUMER_BATCH_SIZE=64", "CONSUMER_BATCH_WAIT=5ms", "CONSUMER_CONCURRENCY=16", "DB_MAX_CONNS=40",
		"OTEL_BSP_MAX_QUEUE_SIZE=8192", "OTEL_EXPORTER_OTLP_COMPRESSION=gzip", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=64", "OUTBOX_BATCH_SIZE=500"}
	if got := serviceSettings(environ); !slices.Equal(got, want) {
		t.Errorf("serviceSettings =\n %v\nwant\n %v", got, want)
	}
}

// The bench points each signal at its receiver's side for the protocol the settings
// choose, so `OTEL_EXPORTER_OTLP_PROTOCOL=grpc make bench` exports over gRPC.
func TestOTLPEndpointsFollowTheProtocol(t *testing.T) {
	o := &testenv.OTLP{URL: "http://127.0.0.1:1", GRPCAddr: "127.0.0.1:2"}
	for _, c := range []struct {
		settings []string
		want     []string
	}{
		{nil, []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:1/v1/traces",
			"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://127.0.0.1:1/v1/metrics", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://127.0.0.1:1/v1/logs"}},
		{[]string{"OTEL_EXPORTER_OTLP_PROTOCOL=GRPC", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/protobuf"}, []string{
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:2", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://127.0.0.1:2",
			"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=http://127.0.0.1:1/v1/logs"}},
	} {
		if got := otlpEndpoints(o, c.settings); !slices.Equal(got, c.want) {
			t.Errorf("otlpEndpoints(%v) =\n %v\nwant\n %v", c.settings, got, c.want)
		}
	}
}

func TestSumCounter(t *testing.T) {
	text := `# HELP loudly_telemetry_spans_dropped_total Spans ended but not exported.
# TYPE loudly_telemetry_spans_dropped_total counter
loudly_telemetry_spans_dropped_total{reason="queue_full"} 42
loudly_telemetry_spans_dropped_total{reason="export_failed"} 1e+01
loudly_telemetry_spans_dropped_total_other 5
loudly_telemetry_log_dropped_total{sink="loki"} 7
`
	if got, err := sumCounter(strings.NewReader(text), "loudly_telemetry_spans_dropped_total"); err != nil || got != 52 {
		t.Errorf("sumCounter = %d, %v; want 52 (both reasons, nothing else)", got, err)
	}
	if got, err := sumCounter(strings.NewReader("# nothing dropped yet\n"), "loudly_telemetry_spans_dropped_total"); err != nil || got != 0 {
		t.Errorf("sumCounter of no samples = %d, %v; want 0", got, err)
	}
	if _, err := sumCounter(strings.NewReader("loudly_telemetry_spans_dropped_total{reason=\"x\"} many\n"), "loudly_telemetry_spans_dropped_total"); err == nil {
		t.Error("a sample that is not a number was summed")
	}
}

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"loudly/internal/testenv"
	"loudly/loadtest/load"
)

// BenchmarkThroughput is `make bench`: in one run on this machine it measures what
// PostgreSQL allows for the order service's accept transaction, and what the pipeline does
// against the same PostgreSQL, and prints one line comparing them:
//
//  1. limit: pgbench of the accept transaction (testdata/accept.pgbench) with 8 clients on
//     a fresh copy of the order schema, at the start and again at the end of the run (the
//     ratio uses their mean, so a machine getting busier or quieter meanwhile does not
//     move it);
//  2. saturated: both services as processes (built from ./services/...), a fresh database
//     and JetStream server, telemetry fully on as deploy/compose sets it (every span
//     exported over OTLP to a receiver, every log line on stdout and pushed to a Loki
//     endpoint, /metrics scraped with exemplars every 5s), offered far more orders than they can
//     settle (the standard mix: hot SKUs, LIMITED-001, 2% poison events), every order and
//     poison event verified to reach its end; settled/s is the pipeline's figure;
//  3. half rate: the same at half the saturated settled/s, for accept→settled latency
//     at that rate: the orders of the phase's first BENCH_WARMUP (3s, sent before its
//     BENCH_DURATION) are verified like the others but their latency is reported apart
//     (half_warmup_p99_ms), as the fresh services' start, not their latency at the rate;
//  4. telemetry off twice, on twice, off once more, at saturation (with the first
//     saturated run: on, off, off, on, on, off): the cost of telemetry as a ratio of
//     means, each setting's runs spread over the bench so drift in the machine's load
//     about cancels out, and three of each so one unlucky run weighs a third. The CPU
//     time both services spent per settled order, on and off, is printed too: it
//     measures the same cost without depending on what else the machine is doing.
//
// Each phase starts from fresh processes, database and stream. Service settings in the
// environment (CONSUMER_*, OUTBOX_*, DB_MAX_CONNS, …; see serviceSettings) reach both
// services, so configurations are compared by running it twice. Knobs of the bench itself:
// BENCH_DURATION (load per pipeline phase, 15s), BENCH_RATE (offered rate at saturation:
// 1.5 × the first pgbench's accept tx/s, saturationRate when pgbench did not run),
// BENCH_CONCURRENCY (requests in flight at saturation, 256), BENCH_PGBENCH_DURATION
// (15s), BENCH_HALF_RATE (the latency phase's rate instead of half the saturated figure,
// to compare settings at one rate), BENCH_TIMELINE (per phase, the orders passing each
// stage in each second; the stages' percentiles are printed always: stages_test.go),
// BENCH_PROFILE_DIR (take a CPU profile of each service in every pipeline phase, through
// PPROF_ADDR).
func BenchmarkThroughput(b *testing.B) {
	var (
		pgbenchFor  = benchDuration(b, "BENCH_PGBENCH_DURATION", 15*time.Second)
		loadFor     = benchDuration(b, "BENCH_DURATION", 15*time.Second)
		concurrency = benchInt(b, "BENCH_CONCURRENCY", 256)
		warmup      = benchWarmup(b)
	)
	pgbench := mustFindPgbench(b)
	p := pipeline{settings: serviceSettings(os.Environ()), profileDir: os.Getenv("BENCH_PROFILE_DIR"), bin: buildServices(b)}
	if p.profileDir != "" {
		if err := os.MkdirAll(p.profileDir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	line := benchLine{Env: p.settings}
	// The line is printed however the bench ends, so a failed run still shows what it saw.
	defer func() { fmt.Println(line) }()
	step := func(name string, f func(b *testing.B)) {
		if !b.Run(name, f) {
			b.FailNow()
		}
	}

	limit := func(name string, into *float64) {
		step(name, func(b *testing.B) {
			r, err := runPgbench(b.Context(), pgbench, orderSchemaCopy(b), 8, pgbenchFor)
			if err != nil {
				b.Fatal(err)
			}
			if r.Failed > 0 {
				b.Fatalf("%d of the accept transactions failed:\n%s", r.Failed, r.Output)
			}
			b.Logf("pgbench: %d transactions, %.1f tx/s", r.Processed, r.TPS)
			b.ReportMetric(r.TPS, "tx/s")
			*into = r.TPS
		})
	}
	limit("limit/pgbench", &line.PgbenchTPS)
	// Saturation must be offered more than the pipeline can settle, or settled/s is only
	// the offered rate (and telemetry on/off near 1 for that reason alone): a fixed 3000/s
	// was, on a faster machine. Half as much again as PostgreSQL's accept tx/s is above
	// anything the pipeline has settled (at most 0.7 of it); orders the services cannot
	// take in time are not sent (behind) and change nothing else.
	line.Offered = benchFloat(b, "BENCH_RATE", cmp.Or(1.5*line.PgbenchTPS, saturationRate))
	saturated := func(name string, telemetryOn bool, settled *float64, cpu *time.Duration) {
		step(name, func(b *testing.B) {
			r := p.run(b, phase{name: name, telemetry: telemetryOn, rate: line.Offered, duration: loadFor, concurrency: concurrency})
			if r.SettledPerSec >= keptUp*line.Offered {
				line.Unsaturated++
				b.Logf("NOT SATURATED: %s settled %.1f/s of the %.1f/s offered: the pipeline kept up, so this is not what it can settle, "+
					"and the telemetry on/off ratio is not its cost; run again with a higher BENCH_RATE", name, r.SettledPerSec, line.Offered)
			}
			line.Lost += r.Lost
			line.SpansDropped += r.spansDropped
			line.sawSpeed(r.cpuSpeed)
			*settled, *cpu = r.SettledPerSec, r.cpuPerOrder
		})
	}
	var cpuOn1, cpuOn2 time.Duration
	saturated("saturated/telemetry=on", true, &line.Saturated, &cpuOn1)
	line.HalfRate = benchFloat(b, "BENCH_HALF_RATE", line.Saturated/2) // set: a fixed rate, to compare settings' latency
	step("half_rate/telemetry=on", func(b *testing.B) {
		r := p.run(b, phase{name: "half_rate", telemetry: true, rate: line.HalfRate, duration: loadFor, concurrency: 128, warmup: warmup})
		line.sawSpeed(r.cpuSpeed)
		s := r.Summary
		line.Lost += s.Lost
		line.SpansDropped += r.spansDropped
		line.HalfSettled, line.P50, line.P99, line.WarmupP99 = s.SettledPerSec, s.P50, s.P99, s.WarmupP99
		if s.Behind > 0 {
			b.Logf("%d orders could not be sent on time at %.1f/s: the pipeline did not keep up with half its saturated rate", s.Behind, line.HalfRate)
		}
	})
	var cpuOn3, cpuOff1, cpuOff2, cpuOff3 time.Duration
	saturated("saturated/telemetry=off", false, &line.SaturatedOff, &cpuOff1)
	saturated("saturated_again/telemetry=off", false, &line.SaturatedOff2, &cpuOff2)
	saturated("saturated_again/telemetry=on", true, &line.SaturatedOn2, &cpuOn2)
	saturated("saturated_third/telemetry=on", true, &line.SaturatedOn3, &cpuOn3)
	saturated("saturated_third/telemetry=off", false, &line.SaturatedOff3, &cpuOff3)
	line.CPUPerOrderOn, line.CPUPerOrderOff = (cpuOn1+cpuOn2+cpuOn3)/3, (cpuOff1+cpuOff2+cpuOff3)/3
	limit("limit_again/pgbench", &line.PgbenchTPS2)
}

// saturationRate is offered at saturation when no pgbench figure sets the rate: well
// above anything the pipeline has settled on a 2-core machine (3,485/s at most, 2026-12-06).
const saturationRate = 6000

// keptUp is the share of the offered rate above which a saturated phase did not saturate.
const keptUp = 0.95

// pipeline runs the services under load.
type pipeline struct {
	bin        string   // where buildServices put the binaries
	settings   []string // service settings passed through, NAME=value
	profileDir string   // where CPU profiles go; "" for none
}

// phase is one load run against fresh services.
type phase struct {
	name        string
	telemetry   bool
	rate        float64
	duration    time.Duration
	concurrency int
	// warmup is sent before duration: its orders are verified, but their latency is kept
	// out of the phase's percentiles and reported on its own (load.Config.Warmup).
	warmup time.Duration
}

// phaseResult is the loadtest's summary of a phase and what the services spent on it.
type phaseResult struct {
	load.Summary
	// cpuPerOrder is the CPU time both services used from ready until no order was
	// pending, per final order: the cost of the work itself, which (unlike
	// settled/s) hardly moves when other programs compete for the machine.
	cpuPerOrder time.Duration
	// cpuSpeed is the machine's speed as the phase began (cpuSpeed), MB/s.
	cpuSpeed float64
	// logLinesPerOrder is what both services wrote to stdout by then, per final order.
	logLinesPerOrder float64
	// exportedPerOrder is what both services exported by then, per final order
	// (approximately: span and log batches wait up to a few seconds before export).
	exportedPerOrder telemetryVolume
	// spansDropped is what both services counted as not exported by then (telemetry on).
	spansDropped int64
	// load is the whole machine over the same time (every process on it, PostgreSQL,
	// NATS and the load generator included) and the database's transactions per final
	// order: what says whether a phase was short of CPU, and how well batches amortise.
	machineLoad machineLoad
}

// run starts both services on a fresh database and JetStream server, runs the standard
// mix against them with verification, and returns the loadtest's summary. Anything lost
// fails the benchmark. The services are killed when the phase ends.
func (p pipeline) run(b *testing.B, ph phase) phaseResult {
	b.Helper()
	speed := cpuSpeed() // before anything of the phase starts
	natsURL := testenv.EmbeddedNATS(b).URL()
	dsn := testenv.Postgres(b)
	env := []string{
		"DATABASE_URL=" + dsn, "NATS_URL=" + natsURL,
		"LOG_LEVEL=info", "SHUTDOWN_TIMEOUT=10s",
	}
	var sinks *telemetrySinks
	if ph.telemetry {
		sinks = telemetryOn(b, p.settings)
		env = append(env, sinks.env...)
	}
	env = append(env, p.settings...) // last, so they win over the bench's defaults
	profiles := map[string]string{}  // service → its PPROF_ADDR
	svcEnv := func(name string) []string {
		if p.profileDir == "" {
			return env
		}
		profiles[name] = freeAddr(b)
		return append(env[:len(env):len(env)], "PPROF_ADDR="+profiles[name])
	}
	order := startService(b, filepath.Join(p.bin, "order"), svcEnv("order"))
	inventory := startService(b, filepath.Join(p.bin, "inventory"), svcEnv("inventory"))
	order.waitReady(b, 30*time.Second)
	inventory.waitReady(b, 30*time.Second)
	if sinks != nil {
		defer sinks.scrape(b.Context(), b, order.addr, inventory.addr)()
	}

	cpuBefore := cpuTimes(b, order, inventory)
	machineBefore, err := machineNow(b.Context(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	var profiled func() []error
	if len(profiles) > 0 {
		// Past the start, and done before the sending ends.
		warmup := min(3*time.Second, ph.duration/4)
		profiled = takeProfiles(b.Context(), p.profileDir, strings.NewReplacer("/", "-", "=", "-").Replace(ph.name), profiles, warmup, ph.duration-warmup-time.Second)
	}
	// The services' CPU and log lines are counted up to the moment no order is pending,
	// before verification reads every order back.
	var cpuUsed time.Duration
	var logLines int
	var exported telemetryVolume
	var dropped int64
	var machineAfter machine
	quiet := func(ctx context.Context) error {
		err := waitNothingPending(ctx, dsn)
		cpuUsed = cpuTimes(b, order, inventory) - cpuBefore
		if m, merr := machineNow(ctx, dsn); merr != nil {
			b.Errorf("machine: %v", merr)
		} else {
			machineAfter = m
		}
		logLines = lines(b, order.log) + lines(b, inventory.log)
		exported = sinks.volume()
		if sinks != nil {
			for _, p := range []*process{order, inventory} {
				n, derr := spansDropped(ctx, p.addr)
				if derr != nil {
					b.Errorf("%s: %v", p.name, derr)
				}
				dropped += n
			}
		}
		if err == nil {
			// On stderr: a benchmark's own log is cut to its first lines.
			if st, serr := stages(ctx, dsn, ph.warmup); serr != nil {
				b.Errorf("stages: %v", serr)
			} else {
				fmt.Fprintf(os.Stderr, "%s: where accept→settled went\n%s", ph.name, st)
			}
		}
		return err
	}
	var stdout, stderr bytes.Buffer
	s, err := run(b.Context(), config{
		URL: "http://" + order.addr, NATSURL: natsURL, Rate: ph.rate, Duration: ph.warmup + ph.duration, Warmup: ph.warmup,
		Poison: 0.02, Verify: true, Timeout: 3 * time.Minute, Concurrency: ph.concurrency, Quiet: quiet,
	}, &stdout, &stderr)
	r := phaseResult{Summary: s, cpuSpeed: speed}
	if final := s.Confirmed + s.Rejected + s.Failed; final > 0 {
		r.cpuPerOrder = cpuUsed / time.Duration(final)
		r.logLinesPerOrder = float64(logLines) / float64(final)
		r.exportedPerOrder = exported.per(final)
		r.spansDropped = dropped
		r.machineLoad = machineAfter.since(machineBefore, final)
	}
	if profiled != nil {
		for _, err := range profiled() {
			b.Error(err)
		}
	}
	b.Logf("%s at %.1f/s for %s: %s; per order: services' CPU %s, %.1f log lines, %s, exported %s; spans dropped %d; machine speed at the start %.0f MB/s",
		ph.name, ph.rate, ph.duration, s, r.cpuPerOrder.Round(time.Microsecond), r.logLinesPerOrder, r.machineLoad, r.exportedPerOrder, dropped, r.cpuSpeed)
	if err != nil {
		b.Errorf("run: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	b.ReportMetric(s.SettledPerSec, "settled/s")
	b.ReportMetric(s.OrdersPerSec, "accepted/s")
	b.ReportMetric(float64(s.P50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(s.P99.Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(r.cpuPerOrder.Microseconds())/1000, "cpu_ms/order")
	b.ReportMetric(r.logLinesPerOrder, "log_lines/order")
	b.ReportMetric(r.machineLoad.coresBusy, "cores_busy")
	b.ReportMetric(r.machineLoad.txPerOrder, "pg_tx/order")
	return r
}

// cpuTimes is the CPU time the processes have used so far (user and system).
func cpuTimes(t testing.TB, procs ...*process) time.Duration {
	t.Helper()
	var sum time.Duration
	for _, p := range procs {
		d, err := cpuTime(p.cmd.Process.Pid)
		if err != nil {
			t.Fatalf("CPU time of %s: %v", p.name, err)
		}
		sum += d
	}
	return sum
}

// cpuTime reads a running process's CPU time from /proc/<pid>/stat (Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

// parseProcStat returns utime+stime from a /proc/<pid>/stat line. They are fields 14 and
// 15, counted after the command name, which is in parentheses and may itself hold
// spaces and parentheses; the unit is USER_HZ, 100 per second on Linux.
func parseProcStat(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat line without a command name: %q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat line too short: %q", stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc stat utime %q, stime %q: not numbers", f[11], f[12])
	}
	return ticks(utime + stime), nil
}

// ticks converts a /proc count of clock ticks (USER_HZ, 100 per second on Linux) to a
// duration.
func ticks(n int64) time.Duration {
	const userHZ = 100
	return time.Duration(n) * time.Second / userHZ
}

// lines counts the lines of a file.
func lines(t testing.TB, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis, as a process may name itself.
	stat := "4242 (order (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 1234 567 0 0 20 0 9 0 100 1000000 2000 18446744073709551615"
	got, err := parseProcStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 18010 * time.Millisecond; got != want {
		t.Errorf("parseProcStat = %v, want %v (1234+567 ticks)", got, want)
	}
	if _, err := parseProcStat("4242 (order) S 1 2"); err == nil {
		t.Error("a truncated line parsed")
	}
	// This very process uses CPU: spinning for up to two seconds must show (the clock has
	// 10ms ticks, and a test that runs first may have used less than one so far).
	var d time.Duration
	for deadline, x := time.Now().Add(2*time.Second), 0; time.Now().Before(deadline); x++ {
		if x%1_000_000 == 0 {
			if d, err = cpuTime(os.Getpid()); err != nil || d > 0 {
				break
			}
		}
	}
	if err != nil || d <= 0 {
		t.Errorf("cpuTime(self) = %v, %v after spinning; want a positive duration", d, err)
	}
}

// waitNothingPending returns once the order database has no pending order: every order
// accepted so far has settled, one way or another.
func waitNothingPending(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		var pending int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM orders.orders WHERE status = 'pending'`).Scan(&pending); err != nil {
			return err
		}
		if pending == 0 {
			return nil
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return fmt.Errorf("%d orders still pending: %w", pending, ctx.Err())
		}
	}
}

// telemetrySinks are the receivers of the services' telemetry when it is on: OTLP traces,
// metrics and logs to a receiver, and logs pushed to a Loki endpoint, both on this machine.
type telemetrySinks struct {
	env       []string // the services' settings that point them here
	otlp      *testenv.OTLP
	lokiBytes atomic.Int64
	scraped   atomic.Int64 // bytes read from the services' /metrics
}

func telemetryOn(t testing.TB, settings []string) *telemetrySinks {
	s := &telemetrySinks{otlp: testenv.OTLPReceiver(t)}
	loki := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.lokiBytes.Add(n)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(loki.Close)
	// As deploy/compose configures the services: traces over OTLP, logs pushed to Loki
	// and not also over OTLP (both paths would store every line twice), metrics scraped.
	s.env = append(otlpEndpoints(s.otlp, settings), "LOKI_URL="+loki.URL+"/loki/api/v1/push", "OTEL_LOGS_EXPORTER=none")
	return s
}

// otlpEndpoints points each signal at the receiver's side for the protocol the settings
// choose for it (OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
// else http/protobuf), the receiver serving both.
func otlpEndpoints(o *testenv.OTLP, settings []string) []string {
	get := func(name string) string {
		for _, kv := range settings {
			if k, v, _ := strings.Cut(kv, "="); k == name {
				return v
			}
		}
		return ""
	}
	var env []string
	for _, signal := range []struct{ name, path string }{{"TRACES", testenv.OTLPTraces}, {"METRICS", testenv.OTLPMetrics}, {"LOGS", testenv.OTLPLogs}} {
		endpoint := o.URL + signal.path // a signal's own endpoint is used as it is
		if p := cmp.Or(get("OTEL_EXPORTER_OTLP_"+signal.name+"_PROTOCOL"), get("OTEL_EXPORTER_OTLP_PROTOCOL")); strings.EqualFold(p, "grpc") {
			endpoint = o.GRPCURL()
		}
		env = append(env, "OTEL_EXPORTER_OTLP_"+signal.name+"_ENDPOINT="+endpoint)
	}
	return env
}

// scrapeInterval is deploy/compose/prometheus/prometheus.yml's.
const scrapeInterval = 5 * time.Second

// scrape reads each service's /metrics as Prometheus does (OpenMetrics, with exemplars)
// every scrapeInterval until ctx ends, counting the bytes; a failed scrape fails the bench.
func (s *telemetrySinks) scrape(ctx context.Context, b *testing.B, addrs ...string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, addr := range addrs {
		wg.Go(func() {
			for sleep(ctx, scrapeInterval) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
				if err != nil {
					b.Error(err)
					return
				}
				req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						b.Errorf("scraping %s: %v", addr, err)
					}
					return
				}
				n, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Errorf("scraping %s: %s", addr, res.Status)
					return
				}
				s.scraped.Add(n)
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

// spansDropped reads loudly_telemetry_spans_dropped_total off a service's /metrics,
// every reason summed: spans it ended and could not export.
func spansDropped(ctx context.Context, addr string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %s", res.Status)
	}
	return sumCounter(res.Body, "loudly_telemetry_spans_dropped_total")
}

// sumCounter sums the samples of one counter in the Prometheus text format.
func sumCounter(r io.Reader, name string) (int64, error) {
	var sum float64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue // another metric, or a comment
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			return 0, fmt.Errorf("%s: no value in %q", name, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", name, line, err)
		}
		sum += v
	}
	return int64(sum), sc.Err()
}

// telemetryVolume is what the exporters sent.
type telemetryVolume struct {
	spans                                   float64
	traceBytes, logBytes, metricBytes, loki float64
	scraped                                 float64 // /metrics read by the bench's scrapes
}

// volume is what has arrived so far; nothing when telemetry is off (s is nil).
func (s *telemetrySinks) volume() telemetryVolume {
	if s == nil {
		return telemetryVolume{}
	}
	return telemetryVolume{spans: float64(s.otlp.Spans()), traceBytes: float64(s.otlp.Bytes("/v1/traces")),
		logBytes: float64(s.otlp.Bytes("/v1/logs")), metricBytes: float64(s.otlp.Bytes("/v1/metrics")), loki: float64(s.lokiBytes.Load()),
		scraped: float64(s.scraped.Load())}
}

func (v telemetryVolume) per(n int) telemetryVolume {
	d := float64(n)
	return telemetryVolume{v.spans / d, v.traceBytes / d, v.logBytes / d, v.metricBytes / d, v.loki / d, v.scraped / d}
}

func (v telemetryVolume) String() string {
	if v == (telemetryVolume{}) {
		return "nothing"
	}
	return fmt.Sprintf("%.1f spans (%.0f B), OTLP logs %.0f B, OTLP metrics %.0f B, Loki %.0f B, scraped %.0f B",
		v.spans, v.traceBytes, v.logBytes, v.metricBytes, v.loki, v.scraped)
}

// takeProfiles waits warmup, then takes a CPU profile of length from each service's
// PPROF_ADDR at once, saved as dir/<name>.<service>.pprof. The returned function waits
// for them and returns what went wrong.
func takeProfiles(ctx context.Context, dir, name string, addrs map[string]string, warmup, length time.Duration) (wait func() []error) {
	seconds := max(1, int(length/time.Second))
	var wg sync.WaitGroup
	errs := make(chan error, len(addrs))
	for svc, addr := range addrs {
		wg.Go(func() {
			if !sleep(ctx, warmup) {
				return
			}
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, seconds)
			path := filepath.Join(dir, name+"."+svc+".pprof")
			if err := download(ctx, url, path); err != nil {
				errs <- fmt.Errorf("no CPU profile of %s from PPROF_ADDR=%s (does it serve pkg/profiling there?): %w", svc, addr, err)
			}
		})
	}
	return func() []error {
		wg.Wait()
		close(errs)
		var out []error
		for err := range errs {
			out = append(out, err)
		}
		return out
	}
}

func download(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return os.WriteFile(path, body, 0o644)
}

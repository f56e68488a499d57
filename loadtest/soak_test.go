package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"loudly/internal/gameday"
	"loudly/internal/testenv"
	"loudly/loadtest/load"
	"loudly/services/drill"
)

// Growth the soak tolerates between its two samples of a service, both taken with the
// pipeline quiet after a run: more than this is a leak, not noise. Resident memory keeps
// the heap's recent peak (a drained backlog leaves pages the runtime returns only
// gradually), so its bound is generous, and a leak still shows over the 30 minute
// default (216,000 orders at 120/s: 1 KiB kept per order is 211 MiB); goroutines of a quiet
// service should hardly move, and each count is the least of three a second apart.
const (
	soakRSSGrowth       = 1.5      // end ≤ start × this + soakRSSSlack
	soakRSSSlack        = 32 << 20 // bytes
	soakGoroutineGrowth = 1.25     // end ≤ start × this + soakGoroutineSlack
	soakGoroutineSlack  = 20
)

// BenchmarkSoak is `make soak`, kept out of `go test ./...` (benchmarks run only when
// asked for): the pipeline under steady load for SOAK_DURATION (30m) at SOAK_RATE orders/s
// (by default half the saturated rate, measured first the way `make bench` does), with the
// standard mix (hot SKUs, LIMITED-001, 2% poison), telemetry fully on, and the drills of
// the catalogue switched on one after another through the fault bucket, as `loudly drill
// start` does. Each service's resident memory (/proc/<pid>/status VmRSS) and goroutines
// (go_goroutines on /metrics) are sampled after a warm-up run and again after the soak
// run, both times with every order settled and no drill active; the run fails when any accepted order or poison
// event is lost, an order is reserved twice, a drill never showed as active, or a figure
// grew beyond the bounds above. It prints one line "soak: …".
//
// silent-skip is left out of the cycle: it loses orders on purpose (acked, never applied,
// caught only by the reconciler's alert), and the soak's point is that nothing else does.
// The other drills change outcomes (stock-out rejects, schema-drift and db-outage fail
// orders through the dead letters) but every order still ends final.
func BenchmarkSoak(b *testing.B) {
	var (
		duration = benchDuration(b, "SOAK_DURATION", 30*time.Minute)
		rate     = benchFloat(b, "SOAK_RATE", 0)
	)
	if duration < time.Minute {
		b.Fatalf("SOAK_DURATION=%s: want at least 1m (a warm-up, drills, a quiet end)", duration)
	}
	p := pipeline{settings: serviceSettings(os.Environ()), bin: buildServices(b)}
	line := soakLine{Duration: duration, Rate: rate}
	defer func() { fmt.Println(line) }()
	if rate == 0 {
		if !b.Run("saturation", func(b *testing.B) {
			r := p.run(b, phase{name: "saturation", telemetry: true, rate: saturationRate, duration: 15 * time.Second, concurrency: 256})
			line.Saturated = r.SettledPerSec
		}) {
			b.FailNow()
		}
		line.Rate = line.Saturated / 2
		if line.Rate < 1 {
			b.Fatalf("saturated rate %.1f/s: nothing to soak at", line.Saturated)
		}
	}
	b.Run("soak", func(b *testing.B) { soak(b, p, &line) })
}

// soakLine is what `make soak` found, printed as one line.
type soakLine struct {
	Duration        time.Duration
	Rate, Saturated float64 // orders/s offered; settled/s at saturation (0: SOAK_RATE was given)
	Drills, Active  int     // drills switched on; seen active on the service they act in
	// Over the warm-up and the soak run.
	Accepted, Lost, DeadLettered, PoisonSent, Unexpected int
	P50, P99                                             time.Duration // the soak run's
	Windows                                              []load.Window // the soak run's, soakWindow each
	Verify                                               time.Duration // the soak run's verification
	Twice                                                int           // orders reserved more than once
	Services                                             []soakFigures
}

// add counts a run in.
func (l *soakLine) add(s load.Summary) {
	l.Accepted += s.Accepted
	l.Lost += s.Lost
	l.DeadLettered += s.DeadLettered
	l.PoisonSent += s.PoisonSent
	l.Unexpected += s.Unexpected
	l.P50, l.P99 = s.P50, s.P99
	l.Windows, l.Verify = s.Windows, s.VerifyDuration
}

// soakWindow is the length of the soak run's windows: its p99 and settled/s, window by
// window, show a pipeline falling behind (p99 rising, settled/s below the rate) or slowing
// as its tables grow. The end rate is the last window's (which holds the drain after the
// sending stopped) unless it is shorter than half a window; then the one before.
const soakWindow = 5 * time.Minute

// soakFigures are one service's samples.
type soakFigures struct {
	Name                           string
	RSSStart, RSSEnd               int64 // bytes
	GoroutinesStart, GoroutinesEnd int
}

func (f soakFigures) String() string {
	return fmt.Sprintf("%s RSS %.1f→%.1f MiB, goroutines %d→%d", f.Name,
		float64(f.RSSStart)/(1<<20), float64(f.RSSEnd)/(1<<20), f.GoroutinesStart, f.GoroutinesEnd)
}

// grew reports whether the end sample is beyond the noise bounds of the start sample.
func (f soakFigures) grew() bool {
	return float64(f.RSSEnd) > float64(f.RSSStart)*soakRSSGrowth+soakRSSSlack ||
		float64(f.GoroutinesEnd) > float64(f.GoroutinesStart)*soakGoroutineGrowth+soakGoroutineSlack
}

func (l soakLine) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: duration=%s rate=%.1f", l.Duration, l.Rate)
	if l.Saturated > 0 {
		fmt.Fprintf(&b, " saturated=%.1f", l.Saturated)
	}
	fmt.Fprintf(&b, " drills=%d active_seen=%d accepted=%d lost=%d applied_twice=%d dead_lettered=%d/%d unexpected=%d p50_ms=%s p99_ms=%s",
		l.Drills, l.Active, l.Accepted, l.Lost, l.Twice, l.DeadLettered, l.PoisonSent, l.Unexpected, ms(l.P50), ms(l.P99))
	if len(l.Windows) > 0 {
		p99s, rates := make([]string, len(l.Windows)), make([]string, len(l.Windows))
		for i, w := range l.Windows {
			p99s[i], rates[i] = ms(w.P99), strconv.FormatFloat(w.SettledPerSec, 'f', 0, 64)
		}
		first, last := l.Windows[0], l.Windows[len(l.Windows)-1]
		if last.Length < soakWindow/2 && len(l.Windows) > 1 {
			last = l.Windows[len(l.Windows)-2] // a short drain tail is no rate to quote
		}
		win := fmt.Sprintf("%dm", int(soakWindow.Minutes()))
		fmt.Fprintf(&b, " p99_ms_per_%s=%s settled_per_s_per_%s=%s settled_per_s_start=%.1f settled_per_s_end=%.1f",
			win, strings.Join(p99s, ","), win, strings.Join(rates, ","), first.SettledPerSec, last.SettledPerSec)
	}
	fmt.Fprintf(&b, " verify_s=%.1f", l.Verify.Seconds())
	for _, s := range l.Services {
		fmt.Fprintf(&b, " %s_rss_mib=%.1f→%.1f %s_goroutines=%d→%d", s.Name,
			float64(s.RSSStart)/(1<<20), float64(s.RSSEnd)/(1<<20), s.Name, s.GoroutinesStart, s.GoroutinesEnd)
	}
	return b.String()
}

// soak runs one service of each kind under load with the drills cycling.
func soak(b *testing.B, p pipeline, line *soakLine) {
	live := p.start(b, "DRILLS=enabled")
	natsURL, dsn, procs, pprof := live.natsURL, live.dsn, live.procs, live.pprof
	names := []string{"order", "inventory"}
	js := testenv.JetStream(b, natsURL, nats.Name("soak-drills"))

	// The timeline: a warm-up run, then the soak run with the drills in its middle and a
	// quiet end as long as the warm-up. The samples are taken when each run is over and
	// has settled everything (and the load generator has closed its connections): the
	// same quiet state twice, so what is in flight at the moment does not count.
	warmup := min(time.Minute, line.Duration/6)
	soakLoad := line.Duration - warmup
	middle := soakLoad - warmup
	each := min(max(middle/14, 10*time.Second), time.Minute)
	var catalog []drill.Spec
	for _, s := range drill.Catalog {
		if s.Name != drill.SilentSkip {
			catalog = append(catalog, s)
		}
	}
	plan := gameday.NewSchedule(uint64(time.Now().UnixNano()), middle, each, each/2, catalog)
	line.Drills = len(plan.Drills)

	cfg := config{
		URL: "http://" + procs["order"].addr, NATSURL: natsURL, Rate: line.Rate, Duration: warmup,
		Poison: 0.02, Verify: true, Timeout: 10 * time.Minute, Concurrency: 64,
		Quiet: func(ctx context.Context) error { return waitNothingPending(ctx, dsn) },
	}
	var stdout, stderr bytes.Buffer
	// Printed, not logged: a benchmark's log keeps only its first ten lines.
	defer func() { fmt.Printf("loadtest:\n%s%s", stdout.String(), lastLines(stderr.String(), 30)) }()
	warm, err := run(b.Context(), cfg, &stdout, &stderr)
	line.add(warm)
	if err != nil {
		b.Fatalf("warm-up run: %v", err)
	}
	figures := make([]soakFigures, len(names))
	for i, name := range names {
		figures[i] = soakFigures{Name: name}
		figures[i].RSSStart, figures[i].GoroutinesStart = sampleService(b, procs[name])
	}
	b.Logf("after %s of warm-up at %.1f/s: %v; drills: %s each, %s apart: %s",
		warmup, line.Rate, figures, each, each/2, strings.Join(plan.Drills, ", "))

	cfg.Duration = soakLoad
	cfg.Window = soakWindow
	var res load.Summary
	var runErr error
	done := make(chan struct{})
	runCtx, cancelRun := context.WithCancel(b.Context())
	start := time.Now()
	go func() {
		defer close(done)
		res, runErr = run(runCtx, cfg, &stdout, &stderr)
	}()
	defer func() {
		cancelRun() // a no-op unless the soak is failing before the load's end
		<-done
	}()
	// The drills follow the load's timeline; a load that ended early ends them too.
	ended := false
	at := func(d time.Duration) bool {
		if !ended {
			select {
			case <-done:
				ended = true
			case <-time.After(time.Until(start.Add(d))):
			}
		}
		return !ended
	}
	faultSwitch := gameday.Bucket(js)
	for i, name := range plan.Drills {
		slot := time.Duration(i) * (each + each/2)
		if !at(slot) {
			break
		}
		if err := faultSwitch.Start(b.Context(), name, each); err != nil {
			b.Fatalf("start drill %s: %v", name, err)
		}
		// The services' watchers pick a fault up within a second, later on a busy
		// machine: look until the drill ends.
		spec, _ := drill.Lookup(name)
		seen := false
		for !seen && time.Since(start) < slot+each && at(0) {
			seen = metricSum(b, procs[spec.Service], "loudly_fault_active", "fault", name) > 0
			if !seen {
				time.Sleep(250 * time.Millisecond)
			}
		}
		if seen {
			line.Active++
		} else {
			b.Errorf("drill %s: loudly_fault_active{fault=%q} stayed 0 on %s while the drill was on (DRILLS=enabled?)", name, name, spec.Service)
		}
	}
	<-done
	line.add(res)
	if runErr != nil {
		b.Errorf("run: %v", runErr)
	}
	for i, name := range names {
		figures[i].RSSEnd, figures[i].GoroutinesEnd = sampleService(b, procs[name])
	}
	line.Services = figures
	b.Logf("after the soak run: %v", figures)
	line.Twice = reservedTwice(b, dsn)
	if line.Lost != 0 || line.Twice != 0 || line.Accepted == 0 || line.DeadLettered != line.PoisonSent {
		b.Errorf("accepted %d, lost %d, reserved twice %d, dead-lettered %d of %d poison events: want some accepted, 0 lost, 0 twice, every poison event",
			line.Accepted, line.Lost, line.Twice, line.DeadLettered, line.PoisonSent)
	}
	for _, f := range line.Services {
		if f.grew() {
			b.Errorf("%s grew beyond noise (RSS bound ×%g + %d MiB, goroutines ×%g + %d): %s; its goroutines:\n%s",
				f.Name, soakRSSGrowth, soakRSSSlack>>20, soakGoroutineGrowth, soakGoroutineSlack, f, goroutineDump(b.Context(), pprof[f.Name]))
		}
	}
	b.ReportMetric(res.SettledPerSec, "settled/s")
	b.ReportMetric(float64(line.Lost), "lost")
}

// lastLines is the last n lines of s: the end of a long run's progress reports.
func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines[max(len(lines)-n, 0):], "")
}

// live is both services running for a long benchmark, on their own database and
// JetStream server, with telemetry on.
type live struct {
	natsURL, dsn string
	procs        map[string]*process // by service name
	pprof        map[string]string   // each service's PPROF_ADDR, for a goroutine dump
}

// start runs both services with the pipeline's settings and env added, and waits until
// they are ready. They are killed when the benchmark ends.
func (p pipeline) start(b *testing.B, env ...string) live {
	l := live{natsURL: testenv.EmbeddedNATS(b).URL(), dsn: testenv.Postgres(b), procs: map[string]*process{}, pprof: map[string]string{}}
	env = append([]string{
		"DATABASE_URL=" + l.dsn, "NATS_URL=" + l.natsURL,
		"LOG_LEVEL=info", "SHUTDOWN_TIMEOUT=10s",
	}, env...)
	env = append(env, telemetryOn(b, p.settings).env...)
	env = append(env, p.settings...)
	for _, name := range []string{"order", "inventory"} {
		l.pprof[name] = freeAddr(b)
		l.procs[name] = startService(b, filepath.Join(p.bin, name), append(env[:len(env):len(env)], "PPROF_ADDR="+l.pprof[name]))
	}
	for _, pr := range l.procs {
		pr.waitReady(b, 30*time.Second)
	}
	return l
}

// goroutineDump is the goroutine profile a service serves on its PPROF_ADDR, grouped by
// stack, or why there is none.
func goroutineDump(ctx context.Context, addr string) string {
	f, err := os.CreateTemp("", "soak-goroutines-*.txt")
	if err != nil {
		return err.Error()
	}
	path := f.Name()
	f.Close()
	defer os.Remove(path)
	if err := download(ctx, "http://"+addr+"/debug/pprof/goroutine?debug=1", path); err != nil {
		return err.Error()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// sampleService reads a service's resident memory and its goroutines, the least of three
// counts a second apart.
func sampleService(t testing.TB, p *process) (rss int64, goroutines int) {
	t.Helper()
	rss, err := residentBytes(p.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("RSS of %s: %v", p.name, err)
	}
	var counts []int
	for i := range 3 {
		if i > 0 {
			time.Sleep(time.Second)
		}
		counts = append(counts, int(metricSum(t, p, "go_goroutines", "", "")))
	}
	return rss, slices.Min(counts)
}

// residentBytes is VmRSS from /proc/<pid>/status (Linux), in bytes.
func residentBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmRSS(f)
}

// parseVmRSS finds the "VmRSS:   12345 kB" line of a /proc/<pid>/status file.
func parseVmRSS(f io.Reader) (int64, error) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want a number of kB", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS line %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS line")
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\torder\nVmPeak:\t 1265432 kB\nVmRSS:\t   43210 kB\nThreads:\t9\n"
	got, err := parseVmRSS(strings.NewReader(status))
	if err != nil || got != 43210<<10 {
		t.Errorf("parseVmRSS = %d, %v; want %d", got, err, 43210<<10)
	}
	if _, err := parseVmRSS(strings.NewReader("Name:\tkernel-thread\n")); err == nil {
		t.Error("a status without VmRSS parsed")
	}
	// This very process has some memory resident.
	if n, err := residentBytes(os.Getpid()); err != nil || n <= 0 {
		t.Errorf("residentBytes(self) = %d, %v; want a positive size", n, err)
	}
}

func TestLastLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\n", 5, "a\n"},
		{"", 3, ""},
	} {
		if got := lastLines(c.in, c.n); got != c.want {
			t.Errorf("lastLines(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

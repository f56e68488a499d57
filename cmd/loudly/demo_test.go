package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"loudly/internal/testenv"
)

// Main removes the loudly program the demo tests share (testenv.Build) when they end.
func TestMain(m *testing.M) { testenv.Main(m) }

// TestDemo runs `loudly demo` as a user does, as a process of its own with its output
// not a terminal, on its own data directory and free ports, with the Prometheus the tests
// use on its PATH, and goes through the silent-skip drill as its guide does. Once orders
// settle, `loudly drill start silent-skip` (the same binary, no flags: it finds the demo
// by itself) makes the inventory consumer skip a fifth of the orders; the demo's
// Prometheus, with the compose demo's rules and intervals, must put LoudlyUnsettledOrders
// into pending (about 70s into the drill: a 1m settlement deadline, a 10s reconciler, 5s
// scrapes). The drill is stopped there, and the alert must still fire (its 2m hold: 3–4
// min after the drill started, as the guide says) while the skipped orders wait out the
// stream's 2m duplicate window. Then the guide's recovery (its step 3, the outbox rows
// marked unsent) and SIGINT: the demo must verify what it sent and end with the load
// generator's summary line and lost=0, and leave no process behind.
func TestDemo(t *testing.T) {
	bin := testenv.Build(t, ".")
	prometheus := testenv.PrometheusPath(t)
	// Under the system temporary directory and readable by all: running as root, the
	// demo's PostgreSQL runs as another user, who must reach its directory.
	dir, err := os.MkdirTemp("", "loudly-demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "NATS_URL", "DATABASE_URL", "PROMETHEUS_URL", "ORDER_URL", "INVENTORY_URL", "PATH", "LOUDLY_DEMO_DIR":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LOUDLY_DEMO_DIR="+dir, "PATH="+filepath.Dir(prometheus)+string(os.PathListSeparator)+os.Getenv("PATH"))

	demo := exec.Command(bin, "demo", "-free-ports", "-verify-timeout", "20s")
	demo.Env = env
	stdout, err := demo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	demo.Stderr = &stderr
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	var lines []string
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
		exited <- demo.Wait()
	}()
	output := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), lines...) }
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = demo.Process.Kill()
			<-exited
			t.Logf("demo stdout:\n%s\nstderr:\n%s", strings.Join(output(), "\n"), stderr.String())
		}
	})
	start := time.Now()
	settled := regexp.MustCompile(`settled_total=([0-9]+)`)
	testenv.WaitFor(t, 3*time.Minute, "the demo's view to show settled orders", func() bool {
		ls := output()
		if len(ls) == 0 {
			return false
		}
		m := settled.FindStringSubmatch(ls[len(ls)-1])
		if m == nil {
			return false
		}
		n, _ := strconv.Atoi(m[1])
		return n > 0
	})
	t.Logf("%s: orders settle: %s", time.Since(start).Round(time.Second), output()[len(output())-1])

	var state struct {
		Pid           int    `json:"pid"`
		PrometheusURL string `json:"prometheus_url"`
		DatabaseURL   string `json:"database_url"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &state); err != nil || state.Pid != demo.Process.Pid || state.PrometheusURL == "" || state.DatabaseURL == "" {
		t.Fatalf("state file %s: %+v (%v), want the demo's pid %d and its Prometheus", b, state, err, demo.Process.Pid)
	}

	drill := exec.Command(bin, "drill", "start", "silent-skip")
	drill.Env = env
	if out, err := drill.CombinedOutput(); err != nil || !strings.Contains(string(out), "started silent-skip") {
		t.Fatalf("loudly drill start silent-skip: %v\n%s", err, out)
	}
	drillStart := time.Now()
	client, err := promapi.NewClient(promapi.Config{Address: state.PrometheusURL})
	if err != nil {
		t.Fatal(err)
	}
	prom := promv1.NewAPI(client)
	alertState := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := prom.Alerts(ctx)
		if err != nil {
			return ""
		}
		for _, a := range res.Alerts {
			if a.Labels["alertname"] == "LoudlyUnsettledOrders" {
				return string(a.State)
			}
		}
		return ""
	}
	testenv.WaitFor(t, 4*time.Minute, "LoudlyUnsettledOrders pending or firing in the demo's Prometheus", func() bool {
		time.Sleep(time.Second)
		return alertState() != ""
	})
	t.Logf("%s: LoudlyUnsettledOrders %s %s after the drill started", time.Since(start).Round(time.Second), alertState(), time.Since(drillStart).Round(time.Second))
	// The view's next line shows both (it reads Prometheus's alerts at each refresh).
	testenv.WaitFor(t, 15*time.Second, "the view to show the drill and the alert", func() bool {
		last := output()[len(output())-1]
		return strings.Contains(last, "drill=silent-skip") && strings.Contains(last, ":LoudlyUnsettledOrders")
	})

	// Stop the drill; the orders it skipped stay unsettled, so the alert goes on to fire.
	stop := exec.Command(bin, "drill", "stop", "silent-skip")
	stop.Env = env
	if out, err := stop.CombinedOutput(); err != nil {
		t.Fatalf("loudly drill stop silent-skip: %v\n%s", err, out)
	}
	drillStopped := time.Now()
	testenv.WaitFor(t, 4*time.Minute, "LoudlyUnsettledOrders firing", func() bool {
		time.Sleep(time.Second)
		return alertState() == "firing"
	})
	t.Logf("%s: LoudlyUnsettledOrders firing %s after the drill started", time.Since(start).Round(time.Second), time.Since(drillStart).Round(time.Second))

	// The guide's recovery: once the newest skipped order is older than the duplicate
	// window, mark the skipped orders' outbox rows unsent, and the relay publishes them again.
	if wait := time.Until(drillStopped.Add(2*time.Minute + 5*time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	replayed := recoverSkippedOrders(t, state.DatabaseURL)
	if replayed == 0 {
		t.Fatal("the guide's recovery found no skipped order to publish again")
	}
	t.Logf("%s: %d skipped orders published again", time.Since(start).Round(time.Second), replayed)

	// Ctrl-C.
	if err := demo.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	interrupted := time.Now()
	select {
	case err = <-exited:
	case <-time.After(3 * time.Minute):
		t.Fatal("the demo did not stop within 3 minutes of SIGINT")
	}
	stopped = true
	ls := output()
	t.Logf("%s: demo exited (%v) %s after SIGINT; stderr:\n%s\nlast lines:\n%s", time.Since(start).Round(time.Second), err, time.Since(interrupted).Round(time.Second), stderr.String(),
		strings.Join(ls[max(0, len(ls)-12):], "\n"))
	summary := ls[len(ls)-1]
	fields := map[string]int{}
	for _, f := range strings.Fields(summary) {
		if k, v, ok := strings.Cut(f, "="); ok {
			fields[k], _ = strconv.Atoi(v)
		}
	}
	if !strings.HasPrefix(summary, "accepted=") || !strings.Contains(summary, "verified=true") {
		t.Fatalf("last line %q is not a verified summary line", summary)
	}
	// After the recovery nothing is lost: every accepted order final, every poison event
	// dead-lettered, nothing with an outcome its content does not explain.
	if fields["lost"] != 0 || fields["accepted"] == 0 || fields["dead_lettered"] != fields["poison"] || fields["poison"] == 0 || fields["unexpected"] != 0 {
		t.Errorf("summary %s: want lost=0, every poison event dead-lettered, nothing unexpected", summary)
	}
	if code := demo.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}

	// Nothing left: no process of the demo's group or started by it, and the state file
	// is gone so the commands no longer find it.
	if _, err := os.Stat(filepath.Join(dir, "demo.json")); !os.IsNotExist(err) {
		t.Errorf("state file still there after the demo ended (%v)", err)
	}
	if left := processesUnder(t, dir, demo.Process.Pid); len(left) > 0 {
		t.Errorf("processes left behind: %s", strings.Join(left, "; "))
	}
}

// recoverSkippedOrders runs step 3 of docs/drills/silent-skip.md on the demo's database
// and returns how many outbox rows it marked unsent.
func recoverSkippedOrders(t *testing.T, dsn string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the demo's PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, `UPDATE orders.outbox SET sent_at = NULL, next_attempt_at = now()
WHERE event_id IN (
  SELECT h.event_id
  FROM orders.orders o
  JOIN orders.order_history h ON h.order_id = o.id AND h.status = 'pending'
  WHERE o.status = 'pending'
    AND o.created_at < now() - interval '2 minutes'
    AND NOT EXISTS (SELECT 1 FROM inventory.reservations r WHERE r.event_id = h.event_id))`)
	if err != nil {
		t.Fatalf("the guide's recovery: %v", err)
	}
	return tag.RowsAffected()
}

// processesUnder lists the processes whose parent is pid, or whose command line names
// dir (PostgreSQL and Prometheus are started with their directories under it).
func processesUnder(t *testing.T, dir string, pid int) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("list processes: %v", err)
	}
	var left []string
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		cmd := strings.ReplaceAll(string(cmdline), "\x00", " ")
		ppid := -1
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				ppid, _ = strconv.Atoi(f[1])
			}
		}
		if (ppid == pid || strings.Contains(cmd, dir)) && syscall.Kill(p, 0) == nil {
			left = append(left, fmt.Sprintf("%d %s", p, cmd))
		}
	}
	return left
}

// `make demo | tee log`, then Ctrl-C: the terminal's SIGINT ends tee first, and the demo's
// stdout becomes a pipe nobody reads. The demo must not die of SIGPIPE: it goes on to
// verify what it sent, and its ending — the summary line last — reaches the terminal on
// stderr and the data directory's logs/demo.log; the state file is gone, and the exit code
// is the run's, not a signal's: 0, since nothing was lost, though the stock-out drill
// made orders end in rejections their content does not explain (a warning).
func TestDemo_SurvivesAClosedStdout(t *testing.T) {
	bin := testenv.Build(t, ".")
	dir, err := os.MkdirTemp("", "loudly-demo-pipe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the demo's PostgreSQL may run as another user
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "NATS_URL", "DATABASE_URL", "PROMETHEUS_URL", "ORDER_URL", "INVENTORY_URL", "LOUDLY_DEMO_DIR":
			continue
		}
		env = append(env, kv)
	}
	demo := exec.Command(bin, "demo", "-free-ports", "-verify-timeout", "30s")
	demo.Env = append(env, "LOUDLY_DEMO_DIR="+dir)
	stdout, err := demo.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuilder
	demo.Stderr = &stderr
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if demo.ProcessState == nil {
			_ = demo.Process.Kill()
			_ = demo.Wait()
		}
		t.Logf("stderr:\n%s", stderr.String())
	})

	// Read the plain view until orders settle, then go away as tee does.
	settled := regexp.MustCompile(`settled_total=([1-9][0-9]*)`)
	sc := bufio.NewScanner(stdout)
	found := make(chan bool, 1)
	go func() {
		for sc.Scan() {
			if settled.MatchString(sc.Text()) {
				found <- true
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Fatal("the demo's output ended before orders settled")
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("no settled orders in the demo's view within 3 minutes")
	}
	// The stock-out drill: orders for the hot SKU are rejected, which their content does
	// not explain (unexpected=), a warning in the summary and no failure of the run.
	drill := exec.Command(bin, "drill", "start", "stock-out")
	drill.Env = demo.Env
	if out, err := drill.CombinedOutput(); err != nil || !strings.Contains(string(out), "started stock-out") {
		t.Fatalf("loudly drill start stock-out: %v\n%s", err, out)
	}
	stdout.Close()
	// The plain view writes a line every 5 s: it meets the closed pipe.
	time.Sleep(7 * time.Second)
	if err := demo.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the demo died with its reader: %v", err)
	}

	if err := demo.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- demo.Wait() }()
	select {
	case <-waited:
	case <-time.After(3 * time.Minute):
		t.Fatal("the demo did not stop within 3 minutes of SIGINT")
	}
	if ws, ok := demo.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		t.Fatalf("the demo was killed by %v", ws.Signal())
	}
	if code := demo.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d, want 0 (nothing lost)", code)
	}
	last := func(text string) string {
		lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
		return lines[len(lines)-1]
	}
	summary := last(stderr.String())
	if !strings.HasPrefix(summary, "accepted=") || !strings.Contains(summary, " lost=0 ") || !strings.HasSuffix(summary, "verified=true") ||
		strings.Contains(summary, " unexpected=0 ") {
		t.Errorf("the last line on stderr is not a verified summary with the drill's unexpected rejections: %q", summary)
	}
	logged, err := os.ReadFile(filepath.Join(dir, "logs", "demo.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got := last(string(logged)); got != summary {
		t.Errorf("logs/demo.log ends with %q, want the summary %q", got, summary)
	}
	if _, err := os.Stat(filepath.Join(dir, "demo.json")); !os.IsNotExist(err) {
		t.Errorf("state file still there after the demo ended (%v)", err)
	}
}

// syncBuilder is a strings.Builder written by one goroutine and read by another.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

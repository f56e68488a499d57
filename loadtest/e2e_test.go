package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"loudly/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestEndToEnd builds the real order and inventory binaries, starts them as processes on
// one fresh database and a JetStream server, runs the load generator against them in
// process with verification on, and stops them with SIGTERM: the whole pipeline, nothing
// mocked, and nothing lost.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs both services for about half a minute")
	}
	bin := buildServices(t)
	dsn := testenv.Postgres(t)
	// Always a server of its own, even when NATS_URL names a shared one: the services use
	// fixed stream and durable consumer names, so on a shared server they would take
	// messages from (and give theirs to) whatever else runs the pipeline there.
	natsURL := testenv.EmbeddedNATS(t).URL()
	common := []string{
		"DATABASE_URL=" + dsn,
		"NATS_URL=" + natsURL,
		"LOG_LEVEL=warn",
		"SETTLEMENT_DEADLINE=5s",
		"RECONCILE_INTERVAL=1s",
		"SHUTDOWN_TIMEOUT=10s",
	}
	order := startService(t, filepath.Join(bin, "order"), common)
	inventory := startService(t, filepath.Join(bin, "inventory"), common)
	order.waitReady(t, 30*time.Second)
	inventory.waitReady(t, 30*time.Second)

	cfg := config{
		URL: "http://" + order.addr, NATSURL: natsURL,
		Rate: 200, Duration: 10 * time.Second, Poison: 0.02,
		Verify: true, Timeout: 2 * time.Minute, Concurrency: 64,
	}
	var stdout, stderr bytes.Buffer
	s, err := run(t.Context(), cfg, &stdout, &stderr)
	t.Logf("loadtest stdout:\n%s", stdout.String())
	if stderr.Len() > 0 {
		t.Logf("loadtest stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Errorf("run: %v", err)
	}

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if last := lines[len(lines)-1]; last != s.String() {
		t.Errorf("last stdout line = %q, want the summary %q", last, s.String())
	}
	if s.Lost != 0 {
		t.Errorf("lost = %d, want 0", s.Lost)
	}
	if want := cfg.Total(); s.Accepted < want*95/100 {
		t.Errorf("accepted = %d, want at least 95%% of %d", s.Accepted, want)
	}
	if s.Confirmed == 0 {
		t.Error("no order was confirmed")
	}
	if s.Rejected == 0 {
		t.Error("no order was rejected; LIMITED-001 should run out and unknown SKUs should be refused")
	}
	if s.Unexpected != 0 {
		t.Errorf("%d orders got an outcome their content does not explain", s.Unexpected)
	}
	if s.PoisonSent == 0 || s.PoisonErrors != 0 {
		t.Errorf("poison events published = %d, failed = %d; want some and no failures", s.PoisonSent, s.PoisonErrors)
	}
	if s.DeadLettered != s.PoisonSent {
		t.Errorf("dead_lettered = %d, want every poison event sent (%d)", s.DeadLettered, s.PoisonSent)
	}

	// Graceful shutdown: both services finish what they are doing and exit 0.
	order.signal(t, syscall.SIGTERM)
	inventory.signal(t, syscall.SIGTERM)
	order.waitExit(t, 20*time.Second)
	inventory.waitExit(t, 20*time.Second)
}

// buildServices builds the service binaries into a temporary directory.
func buildServices(t testing.TB) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./services/order", "./services/inventory")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build the services: %v\n%s", err, out)
	}
	return dir
}

// process is a service started by the test.
type process struct {
	name string
	addr string // HTTP listen address
	cmd  *exec.Cmd
	log  string        // file holding its stdout and stderr
	sent time.Time     // when the test signalled it
	done chan struct{} // closed when it has exited
	err  error         // its exit, valid once done is closed
}

// startService starts the binary with env on a free port. Its output goes to a file whose
// end is printed if the test fails; a process still running when the test ends is killed.
func startService(t testing.TB, path string, env []string) *process {
	t.Helper()
	p := &process{name: filepath.Base(path), addr: freeAddr(t), done: make(chan struct{})}
	p.log = filepath.Join(t.TempDir(), p.name+".log")
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	p.cmd = exec.Command(path)
	p.cmd.Env = append(parentEnv(), append(env, "HTTP_ADDR="+p.addr)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s log (last lines):\n%s", p.name, p.tail(40))
		}
	})
	return p
}

// parentEnv is the test's environment without what would change how a service behaves:
// its own configuration comes only from the test.
func parentEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "OTEL_"), strings.HasPrefix(k, "CONSUMER_"), strings.HasPrefix(k, "OUTBOX_"),
			k == "DATABASE_URL", k == "NATS_URL", k == "HTTP_ADDR", k == "LOG_LEVEL", k == "DB_MAX_CONNS", k == "DB_MIN_CONNS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady waits until /readyz answers 200, failing early if the process exits.
func (p *process) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, p.err, p.tail(40))
		default:
		}
		resp, err := client.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after %s (last: %v)\n%s", p.name, p.addr, timeout, describe(resp, err), p.tail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describe(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

func (p *process) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	p.sent = time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Errorf("signal %s: %v", p.name, err)
	}
}

// waitExit waits, up to timeout after the signal, for the process to exit with code 0.
func (p *process) waitExit(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(time.Until(p.sent.Add(timeout))):
		t.Errorf("%s still running %s after SIGTERM", p.name, timeout)
		return
	}
	if p.err != nil {
		var exit *exec.ExitError
		if errors.As(p.err, &exit) {
			t.Errorf("%s exited with %v after SIGTERM, want 0", p.name, exit.ProcessState)
		} else {
			t.Errorf("%s: %v", p.name, p.err)
		}
		return
	}
	t.Logf("%s exited 0 within %s of SIGTERM", p.name, time.Since(p.sent).Round(time.Millisecond))
}

// tail returns the last n lines of the process's output.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", p.log, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ms formats a duration in milliseconds as the summary lines do.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

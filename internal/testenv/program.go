package testenv

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"loudly/pkg/lifecycle"
)

// Program is a service started by StartProgram.
type Program struct {
	Addr string // its HTTP_ADDR, a loopback host:port
	Log  string // the file its JSON log lines go to
	stop func()
}

// Stop ends the program as a signal would (its context is cancelled) and fails the test
// unless it exits 0 within a minute. Stopping it again does nothing; the test's cleanup
// calls it.
func (p *Program) Stop() { p.stop() }

// StartProgram runs a service in-process exactly as its main does: lifecycle.Run with the
// service's Program (configuration read from the environment, telemetry, New, Run, the
// shutdown), the way `loudly demo` runs them too, so no test wires a service by hand
// differently from production. env is the program's whole environment; an HTTP_ADDR
// that is missing or ends in ":0" is replaced with a free loopback port, since the
// program's address cannot be asked afterwards. StartProgram returns once /readyz
// answers 200, and stops the program when the test ends.
func StartProgram[C any, S lifecycle.Service](t testing.TB, p lifecycle.Program[C, S], env map[string]string) *Program {
	t.Helper()
	vars := map[string]string{}
	for k, v := range env {
		vars[k] = v
	}
	if a := vars["HTTP_ADDR"]; a == "" || strings.HasSuffix(a, ":0") {
		vars["HTTP_ADDR"] = FreeAddr(t)
	}
	addr := vars["HTTP_ADDR"]
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	logPath := filepath.Join(t.TempDir(), p.Name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() {
		exited <- lifecycle.Run(ctx, p, lifecycle.Process{
			Getenv: func(k string) string { return vars[k] }, Stdout: logFile, Stderr: &stderr,
		})
	}()
	prog := &Program{Addr: addr, Log: logPath}
	var stopped bool
	prog.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-exited:
			if code != 0 {
				t.Errorf("%s exited %d: %s(log: %s)", p.Name, code, stderr.String(), logPath)
			}
		case <-time.After(time.Minute):
			t.Errorf("%s did not stop within a minute after its context ended (log: %s)", p.Name, logPath)
		}
		logFile.Close()
	}
	t.Cleanup(prog.Stop)

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case code := <-exited:
			stopped = true
			cancel()
			logFile.Close()
			t.Fatalf("%s exited %d while starting: %s(log: %s)", p.Name, code, stderr.String(), logPath)
		default:
		}
		if res, err := http.Get("http://" + addr + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return prog
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready on %s after 60s (log: %s)", p.Name, addr, logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

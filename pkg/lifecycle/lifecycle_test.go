package lifecycle

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"loudly/pkg/telemetry"
)

func TestHealthcheck(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
		}
	}))
	defer ready.Close()
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"status":"unavailable"}`, http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	for _, c := range []struct {
		name, addr string
		want       int
	}{
		{"ready", strings.TrimPrefix(ready.URL, "http://"), 0},
		{"not ready", strings.TrimPrefix(notReady.URL, "http://"), ExitFailure},
		{"nothing listening", "127.0.0.1:1", ExitFailure},
		{"bad address", "nope", ExitConfig},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Healthcheck(c.addr, ":8080", io.Discard); got != c.want {
				t.Fatalf("exit %d, want %d", got, c.want)
			}
		})
	}
}

type fakeServer struct {
	mu       sync.Mutex
	events   []string
	stop     chan struct{}
	serveErr error
}

func (s *fakeServer) note(e string) { s.mu.Lock(); s.events = append(s.events, e); s.mu.Unlock() }
func (s *fakeServer) Serve() error  { <-s.stop; return s.serveErr }
func (s *fakeServer) Shutdown(context.Context) error {
	s.note("http stopped")
	close(s.stop)
	return nil
}

func TestServe_StopsHTTPBeforeWorkersAndReportsWorkerErrors(t *testing.T) {
	t.Run("a signal stops the server first, then the workers", func(t *testing.T) {
		srv := &fakeServer{stop: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		worker := Worker{Name: "w", Run: func(ctx context.Context) error {
			<-ctx.Done()
			srv.note("worker stopped")
			return nil
		}}
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
		if err := Serve(ctx, srv, time.Second, worker); err != nil {
			t.Fatal(err)
		}
		if strings.Join(srv.events, ",") != "http stopped,worker stopped" {
			t.Fatalf("order %v", srv.events)
		}
	})
	t.Run("a failing worker stops the service with its error", func(t *testing.T) {
		srv := &fakeServer{stop: make(chan struct{})}
		boom := errors.New("boom")
		err := Serve(context.Background(), srv, time.Second,
			Worker{Name: "relay", Run: func(context.Context) error { return boom }})
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "relay") {
			t.Fatalf("err %v, want boom naming the worker", err)
		}
	})
	t.Run("a worker that returns early without an error stops the service with an error", func(t *testing.T) {
		srv := &fakeServer{stop: make(chan struct{})}
		done := make(chan error, 1)
		go func() {
			done <- Serve(context.Background(), srv, time.Second,
				Worker{Name: "relay", Run: func(context.Context) error { return nil }},
				Worker{Name: "consumer", Run: func(ctx context.Context) error { <-ctx.Done(); return nil }})
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrWorkerStopped) || !strings.Contains(err.Error(), "relay") || strings.Contains(err.Error(), "consumer") {
				t.Fatalf("err %v, want ErrWorkerStopped naming the relay only", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve kept running after a worker stopped: the stop was silent")
		}
		if len(srv.events) == 0 || srv.events[0] != "http stopped" {
			t.Fatalf("events %v: want the server stopped", srv.events)
		}
	})
	t.Run("workers that return nil once the shutdown began are a clean stop", func(t *testing.T) {
		srv := &fakeServer{stop: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := Serve(ctx, srv, time.Second, Worker{Name: "relay", Run: func(ctx context.Context) error { <-ctx.Done(); return nil }})
		if err != nil {
			t.Fatalf("err %v, want nil", err)
		}
	})
}

func TestGCPercent_DefaultUnlessGOGCIsSet(t *testing.T) {
	if pct, ok := gcPercent(func(string) string { return "" }); !ok || pct != DefaultGOGC {
		t.Errorf("GOGC unset: gcPercent = %d, %v; want %d, true", pct, ok, DefaultGOGC)
	}
	for _, v := range []string{"100", "off", "50"} {
		if pct, ok := gcPercent(func(k string) string {
			if k == "GOGC" {
				return v
			}
			return ""
		}); ok {
			t.Errorf("GOGC=%s: gcPercent = %d, true; the operator's setting must stand", v, pct)
		}
	}
}

type neverStarted struct{}

func (neverStarted) Run(context.Context) error { return nil }
func (neverStarted) Close()                    {}

// A bad telemetry variable stops a service before it starts, named in the one message
// that lists every bad variable, the service's own with it.
func TestRun_ABadOTLPVariableIsAConfigurationError(t *testing.T) {
	vars := map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
	p := Program[struct{}, neverStarted]{
		Name: "svc",
		Load: func(func(string) string) (struct{}, error) {
			return struct{}{}, errors.New(`SVC_MODE="loud": want quiet`)
		},
		Start: func(context.Context, struct{}, *telemetry.Telemetry) (neverStarted, error) {
			t.Error("started despite a bad configuration")
			return neverStarted{}, nil
		},
	}
	var stderr strings.Builder
	code := Run(context.Background(), p, Process{Getenv: func(k string) string { return vars[k] }, Stdout: io.Discard, Stderr: &stderr})
	msg := stderr.String()
	if code != ExitConfig || !strings.Contains(msg, `OTEL_EXPORTER_OTLP_PROTOCOL="carrier-pigeon": want one of http/protobuf, grpc`) || !strings.Contains(msg, "SVC_MODE") {
		t.Errorf("exit %d, stderr %q: want %d naming OTEL_EXPORTER_OTLP_PROTOCOL and its choices beside SVC_MODE", code, msg, ExitConfig)
	}
}

package testenv

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// FreeAddr is a free 127.0.0.1:port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// StartCollector runs the OpenTelemetry Collector that `make tools` builds (CollectorPath)
// with the configuration file at path, after replacing each key of subst with its value
// (hostnames, ports, paths: each must occur in the file), waits until healthURL answers
// 200, and stops it at cleanup. It returns the collector's log for failure messages.
func StartCollector(t testing.TB, path string, subst map[string]string, healthURL string) func() string {
	t.Helper()
	bin := CollectorPath(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for from, to := range subst {
		if !strings.Contains(cfg, from) {
			t.Fatalf("testenv: %s has no %q to substitute", path, from)
		}
		cfg = strings.ReplaceAll(cfg, from, to)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "collector.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	withParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start collector: %v", err)
	}
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		return string(b)
	}
	stopOnCleanup(t, cmd, logFile, 15*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(healthURL)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return logTail
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: collector not healthy after 60s; log:\n%s", logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TraceStore stands in for a trace store's OTLP/gRPC receiver (Tempo's): it accepts every
// export and counts spans per trace id.
type TraceStore struct {
	coltrace.UnimplementedTraceServiceServer
	Addr string

	mu    sync.Mutex
	spans map[string]int
}

// StartTraceStore serves OTLP/gRPC traces on a loopback port until cleanup.
func StartTraceStore(t testing.TB) *TraceStore {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &TraceStore{Addr: ln.Addr().String(), spans: map[string]int{}}
	srv := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(srv, s)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return s
}

// Export implements the OTLP trace service.
func (s *TraceStore) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				s.spans[hex.EncodeToString(sp.TraceId)]++
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// Spans is how many spans arrived, over how many traces.
func (s *TraceStore) Spans() (spans, traces int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.spans {
		spans += n
	}
	return spans, len(s.spans)
}

// LogLine is one log line as a log store received it.
type LogLine struct {
	Path    string            // the endpoint it came in on
	Labels  string            // the stream labels of a pushed line
	Line    string            // the line as pushed, or an OTLP record's body
	TraceID string            // an OTLP record's trace id
	SpanID  string            // an OTLP record's span id
	Attrs   map[string]string // an OTLP record's attributes
}

// LogStore stands in for Loki's two ways in: the push API (/loki/api/v1/push, snappy
// protobuf, what the services' LOKI_URL sink sends) and the OTLP endpoint (/otlp/v1/logs,
// what the collector's otlp_http exporter sends). It keeps every line.
type LogStore struct {
	URL string

	mu    sync.Mutex
	lines []LogLine
}

// StartLogStore serves both endpoints on a loopback port until cleanup.
func StartLogStore(t testing.TB) *LogStore {
	t.Helper()
	s := &LogStore{}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Lines returns what arrived so far.
func (s *LogStore) Lines() []LogLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]LogLine(nil), s.lines...)
}

func (s *LogStore) serve(w http.ResponseWriter, r *http.Request) {
	var in io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" { // the collector's otlp_http default
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		in = zr
	}
	body, err := io.ReadAll(in)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var lines []LogLine
	switch r.URL.Path {
	case "/loki/api/v1/push":
		raw, err := snappy.Decode(nil, body)
		if err == nil {
			lines, err = decodePush(raw)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	case "/otlp/v1/logs":
		var req collogs.ExportLogsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					l := LogLine{Path: r.URL.Path, Line: lr.Body.GetStringValue(), Attrs: map[string]string{},
						TraceID: hex.EncodeToString(lr.TraceId), SpanID: hex.EncodeToString(lr.SpanId)}
					for _, a := range lr.Attributes {
						l.Attrs[a.Key] = a.Value.GetStringValue()
					}
					lines = append(lines, l)
				}
			}
		}
	default:
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	for i := range lines {
		lines[i].Path = r.URL.Path
	}
	s.lines = append(s.lines, lines...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// decodePush reads Loki's PushRequest with Loki's own generated type.
func decodePush(b []byte) ([]LogLine, error) {
	var req push.PushRequest
	if err := req.Unmarshal(b); err != nil {
		return nil, err
	}
	var out []LogLine
	for _, s := range req.Streams {
		for _, e := range s.Entries {
			out = append(out, LogLine{Labels: s.Labels, Line: e.Line})
		}
	}
	return out, nil
}

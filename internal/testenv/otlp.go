package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"encoding/hex"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLP is an OTLP/HTTP receiver for tests: it keeps the trace ids of every span exported
// to it and accepts (and counts) metric and log exports, so a test can check that what a
// service points at — an exemplar, a log line — is a trace the service really exported.
type OTLP struct {
	URL string

	mu       sync.Mutex
	traceIDs map[string]int
	requests map[string]int
	bytes    map[string]int64
	spans    int
}

// OTLPReceiver starts a receiver on a loopback port, closed at cleanup.
func OTLPReceiver(t testing.TB) *OTLP {
	t.Helper()
	o := &OTLP{traceIDs: map[string]int{}, requests: map[string]int{}, bytes: map[string]int64{}}
	srv := httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(srv.Close)
	o.URL = srv.URL
	return o
}

func (o *OTLP) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests[r.URL.Path]++
	o.bytes[r.URL.Path] += int64(len(body))
	if r.URL.Path == "/v1/traces" {
		var req coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					o.traceIDs[hex.EncodeToString(s.TraceId)]++
					o.spans++
				}
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// HasTrace reports whether any span of traceID was exported.
func (o *OTLP) HasTrace(traceID string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.traceIDs[traceID] > 0
}

// Requests returns how many exports arrived on path ("/v1/traces", "/v1/metrics", "/v1/logs").
func (o *OTLP) Requests(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requests[path]
}

// Bytes returns how many request body bytes arrived on path, as sent (compressed if the
// exporter compressed them): what an exporter costs the network.
func (o *OTLP) Bytes(path string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes[path]
}

// Spans returns how many spans were exported.
func (o *OTLP) Spans() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.spans
}

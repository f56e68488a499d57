package testenv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// OTLP is an OTLP/HTTP receiver for tests: it keeps the trace ids of every span exported
// to it and accepts (and counts) metric and log exports, so a test can check that what a
// service points at — an exemplar, a log line — is a trace the service really exported.
type OTLP struct {
	URL string

	bufs sync.Pool // *bytes.Buffer: request bodies, read into reused memory

	mu       sync.Mutex
	traceIDs map[[16]byte]int
	requests map[string]int
	bytes    map[string]int64
	spans    int
}

// OTLPReceiver starts a receiver on a loopback port, closed at cleanup.
func OTLPReceiver(t testing.TB) *OTLP {
	t.Helper()
	o := &OTLP{traceIDs: map[[16]byte]int{}, requests: map[string]int{}, bytes: map[string]int64{}}
	srv := httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(srv.Close)
	o.URL = srv.URL
	return o
}

func (o *OTLP) serve(w http.ResponseWriter, r *http.Request) {
	// The receiver stands in for a collector that runs elsewhere, yet in the bench it shares
	// the services' cores: io.ReadAll, growing a fresh slice for every body, was 60% of its
	// CPU at saturation (a CPU profile of the bench process, 2026-12-06).
	buf, _ := o.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer o.bufs.Put(buf)
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, maxBody)))
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxBody+1)); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if buf.Len() > maxBody {
		http.Error(w, "export larger than the test receiver takes", http.StatusRequestEntityTooLarge)
		return
	}
	body := buf.Bytes()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests[r.URL.Path]++
	o.bytes[r.URL.Path] += int64(len(body))
	if r.URL.Path == "/v1/traces" {
		if err := o.countSpans(body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// maxBody bounds what is read of one export (the SDK exporters send far less).
const maxBody = 64 << 20

// HasTrace reports whether any span of traceID was exported.
func (o *OTLP) HasTrace(traceID string) bool {
	var id [16]byte
	if n, err := hex.Decode(id[:], []byte(traceID)); err != nil || n != len(id) {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.traceIDs[id] > 0
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

// countSpans counts the spans of an ExportTraceServiceRequest and their trace ids (o.mu
// held), reading them off the wire: resource_spans (1) → scope_spans (2) → spans (2) →
// trace_id (1). Decoding every request into Go structs instead cost the benchmark's
// machine about 6% of its CPU at saturation, charged to the services' telemetry: in
// production the collector that receives spans runs elsewhere.
func (o *OTLP) countSpans(req []byte) error {
	return field(req, 1, func(rs []byte) error {
		return field(rs, 2, func(ss []byte) error {
			return field(ss, 2, func(span []byte) error {
				o.spans++
				return field(span, 1, func(id []byte) error {
					if len(id) != 16 {
						return errors.New("a trace id is not 16 bytes")
					}
					o.traceIDs[[16]byte(id)]++
					return nil
				})
			})
		})
	})
}

// field calls fn with each length-delimited field numbered num of a protobuf message.
func field(b []byte, num protowire.Number, fn func([]byte) error) error {
	return fields(b, func(n protowire.Number, v []byte) error {
		if n != num {
			return nil
		}
		return fn(v)
	})
}

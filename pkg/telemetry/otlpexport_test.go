package telemetry

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"loudly/pkg/env"
)

// collectorStub answers each export with answer(attempt) and keeps the spans it decoded.
type collectorStub struct {
	attempts atomic.Int64
	spans    atomic.Int64
	answer   func(w http.ResponseWriter, attempt int64)
	check    func(r *http.Request) // optional, on each request
}

func (c *collectorStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := c.attempts.Add(1)
	if c.check != nil {
		c.check(r)
	}
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			c.spans.Add(int64(len(ss.Spans)))
		}
	}
	if c.answer != nil {
		c.answer(w, n)
	}
}

func fastRetries(t *testing.T) {
	first, most := exportRetryFirst, exportRetryMax
	exportRetryFirst, exportRetryMax = time.Millisecond, 4*time.Millisecond
	t.Cleanup(func() { exportRetryFirst, exportRetryMax = first, most })
}

func TestOTLPSpanExporterPostsProtobuf(t *testing.T) {
	for _, gz := range []bool{false, true} {
		var got http.Header
		c := &collectorStub{check: func(r *http.Request) {
			got = r.Header.Clone()
			if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
				t.Errorf("%s %s, want POST /v1/traces", r.Method, r.URL.Path)
			}
		}}
		srv := httptest.NewServer(c)
		exp := newOTLPSpanExporter(otlpHTTPConfig{URL: srv.URL + "/v1/traces", Timeout: time.Second, Gzip: gz,
			Headers: http.Header{"Authorization": {"Bearer s3cret"}}})
		spans := richSpans(t)
		for range 2 { // the second reuses the buffers
			if err := exp.ExportSpans(context.Background(), spans); err != nil {
				t.Fatalf("gzip %v: %v", gz, err)
			}
		}
		srv.Close()
		if n := c.spans.Load(); n != int64(2*len(spans)) {
			t.Errorf("gzip %v: the collector decoded %d spans, want %d", gz, n, 2*len(spans))
		}
		if got.Get("Content-Type") != "application/x-protobuf" || got.Get("Authorization") != "Bearer s3cret" {
			t.Errorf("headers %v", got)
		}
		if gz != (got.Get("Content-Encoding") == "gzip") {
			t.Errorf("gzip %v: Content-Encoding %q", gz, got.Get("Content-Encoding"))
		}
	}
}

func TestOTLPSpanExporterRetriesWhatIsRetryable(t *testing.T) {
	fastRetries(t)
	for _, code := range []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		c := &collectorStub{answer: func(w http.ResponseWriter, attempt int64) {
			if attempt < 3 {
				w.WriteHeader(code)
			}
		}}
		srv := httptest.NewServer(c)
		exp := newOTLPSpanExporter(otlpHTTPConfig{URL: srv.URL + "/v1/traces", Timeout: time.Second})
		err := exp.ExportSpans(context.Background(), loudlySpans(5))
		srv.Close()
		if err != nil || c.attempts.Load() != 3 {
			t.Errorf("status %d twice then 200: err %v after %d attempts, want nil after 3", code, err, c.attempts.Load())
		}
	}
}

func TestOTLPSpanExporterStopsAtAPermanentAnswer(t *testing.T) {
	fastRetries(t)
	c := &collectorStub{answer: func(w http.ResponseWriter, _ int64) { http.Error(w, "spans too large", http.StatusBadRequest) }}
	srv := httptest.NewServer(c)
	defer srv.Close()
	exp := newOTLPSpanExporter(otlpHTTPConfig{URL: srv.URL + "/v1/traces", Timeout: time.Second})
	err := exp.ExportSpans(context.Background(), loudlySpans(5))
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "spans too large") {
		t.Fatalf("err %v, want the status and the collector's words", err)
	}
	if n := c.attempts.Load(); n != 1 {
		t.Fatalf("%d attempts at a 400, want 1", n)
	}
}

func TestOTLPSpanExporterGivesUpWhenRetryAfterOutlastsTheExport(t *testing.T) {
	c := &collectorStub{answer: func(w http.ResponseWriter, _ int64) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	exp := newOTLPSpanExporter(otlpHTTPConfig{URL: srv.URL + "/v1/traces", Timeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := exp.ExportSpans(ctx, loudlySpans(5))
	if err == nil || !strings.Contains(err.Error(), "gave up after 1 attempts") {
		t.Fatalf("err %v, want it to give up at once: the collector asks for 30 s, the export has 5", err)
	}
}

func TestOTLPSpanExporterAfterShutdown(t *testing.T) {
	exp := newOTLPSpanExporter(otlpHTTPConfig{URL: "http://127.0.0.1:1/v1/traces", Timeout: time.Second})
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(context.Background(), loudlySpans(1)); err == nil {
		t.Fatal("export after shutdown succeeded")
	}
}

func partialSuccess(t testing.TB, rejected int64, msg string) []byte {
	t.Helper()
	b, err := proto.Marshal(&coltrace.ExportTraceServiceResponse{PartialSuccess: &coltrace.ExportTracePartialSuccess{RejectedSpans: rejected, ErrorMessage: msg}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSpanExportCountsSpansTheCollectorRejected(t *testing.T) {
	answer := partialSuccess(t, 3, "spans older than the retention")
	c := &collectorStub{answer: func(w http.ResponseWriter, _ int64) {
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(answer)
	}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	exp := newOTLPSpanExporter(otlpHTTPConfig{URL: srv.URL + "/v1/traces", Timeout: time.Second})
	tp, reader := spanExportProvider(t, exp, 100)
	endSpans(tp.Tracer("t"), 10)
	var rej *rejectedError
	if err := tp.ForceFlush(context.Background()); !errors.As(err, &rej) {
		t.Fatalf("flush: %v, want the rejection", err)
	}
	got := droppedSpans(t, reader)
	if got["rejected"] != 3 || got["export_failed"] != 0 {
		t.Fatalf("dropped %v, want rejected 3 and nothing else (one export of 10, 3 refused)", got)
	}
	err := exp.ExportSpans(context.Background(), loudlySpans(2))
	if !errors.As(err, &rej) || rej.n != 3 || !strings.Contains(err.Error(), "older than the retention") {
		t.Fatalf("err %v, want the rejection with the collector's message", err)
	}
}

func TestDecodePartialSuccess(t *testing.T) {
	n, msg, err := decodePartialSuccess(partialSuccess(t, 7, "no"))
	if err != nil || n != 7 || msg != "no" {
		t.Fatalf("%d %q %v", n, msg, err)
	}
	if n, msg, err := decodePartialSuccess(nil); err != nil || n != 0 || msg != "" {
		t.Fatalf("empty answer: %d %q %v", n, msg, err)
	}
	if _, _, err := decodePartialSuccess([]byte{0x0a, 0x05, 0x08}); err == nil {
		t.Fatal("truncated answer decoded")
	}
}

// FuzzDecodePartialSuccess: whatever a collector answers, the decoder returns without
// panicking, and where the generated protobuf code reads an answer, it reads the same.
func FuzzDecodePartialSuccess(f *testing.F) {
	f.Add(partialSuccess(f, 7, "no"))
	f.Add(partialSuccess(f, -1, ""))
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x12, 0x01, 0x00, 0x0a, 0x02, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, msg, err := decodePartialSuccess(b)
		var want coltrace.ExportTraceServiceResponse
		if proto.Unmarshal(b, &want) != nil {
			return
		}
		if err != nil {
			t.Fatalf("%x: %v, but protobuf reads it", b, err)
		}
		if n != want.GetPartialSuccess().GetRejectedSpans() || msg != want.GetPartialSuccess().GetErrorMessage() {
			t.Fatalf("%x: %d %q, protobuf reads %d %q", b, n, msg, want.GetPartialSuccess().GetRejectedSpans(), want.GetPartialSuccess().GetErrorMessage())
		}
	})
}

func TestOTLPHTTPFromEnv(t *testing.T) {
	read := func(vars map[string]string) (otlpHTTPConfig, bool, error) {
		return otlpHTTPFromEnv(vars["OTEL_EXPORTER_OTLP_ENDPOINT"], func(k string) string { return vars[k] })
	}
	cfg, ok, err := read(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"})
	if err != nil || !ok || cfg.URL != "http://collector:4318/v1/traces" || cfg.Timeout != 10*time.Second || cfg.Gzip {
		t.Fatalf("defaults: %+v %v %v", cfg, ok, err)
	}
	cfg, ok, err = read(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://collector:4318",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example/ingest",
		"OTEL_EXPORTER_OTLP_HEADERS":         "api-key=a%20b, tenant=t1",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":  "api-key=traces",
		"OTEL_EXPORTER_OTLP_TIMEOUT":         "2500",
		"OTEL_EXPORTER_OTLP_COMPRESSION":     "gzip",
	})
	if err != nil || !ok || cfg.URL != "https://traces.example/ingest" || cfg.Timeout != 2500*time.Millisecond || !cfg.Gzip ||
		cfg.Headers.Get("api-key") != "traces" || cfg.Headers.Get("tenant") != "" {
		t.Fatalf("traces-specific settings win: %+v %v %v", cfg, ok, err)
	}
	cfg, _, err = read(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, tenant=t1"})
	if err != nil || cfg.Headers.Get("api-key") != "a b" || cfg.Headers.Get("tenant") != "t1" {
		t.Fatalf("headers: %v %v", cfg.Headers, err)
	}
	for name, vars := range map[string]map[string]string{
		"timeout":     {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "soon"},
		"compression": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
		"headers":     {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "novalue"},
		"endpoint":    {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
		"traces url":  {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "grpc://c:4317"},
	} {
		if _, _, err := read(vars); err == nil {
			t.Errorf("bad %s accepted: %v", name, vars)
		}
	}
	if _, _, err := read(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "token=s3cret,broken"}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("a bad header list must be reported without its values: %v", err)
	}
	if _, ok, _ := read(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4318", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": "/ca.pem"}); ok {
		t.Error("a TLS setting must hand the export to the SDK's exporter")
	}
}

func TestSetupChoosesTheSpanEncoder(t *testing.T) {
	srv := httptest.NewServer(&collectorStub{})
	defer srv.Close()
	for _, c := range []struct {
		vars   map[string]string
		direct bool
	}{
		{map[string]string{}, true},
		{map[string]string{"TELEMETRY_SPAN_ENCODER": "sdk"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/ca.pem"}, false},
	} {
		c.vars["OTEL_EXPORTER_OTLP_ENDPOINT"] = srv.URL
		r := env.New(func(k string) string { return c.vars[k] })
		cfg := FromEnv(Config{ServiceName: "test"}, r)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		exp, err := newTraceExporter(context.Background(), cfg, func(k string) string { return c.vars[k] })
		if err != nil {
			t.Fatal(err)
		}
		if _, direct := exp.(*otlpSpanExporter); direct != c.direct {
			t.Errorf("%v: direct encoder %v, want %v", c.vars, direct, c.direct)
		}
		_ = exp.Shutdown(context.Background())
	}
	r := env.New(func(k string) string { return map[string]string{"TELEMETRY_SPAN_ENCODER": "fast"}[k] })
	FromEnv(Config{ServiceName: "test"}, r)
	if r.Err() == nil {
		t.Error("TELEMETRY_SPAN_ENCODER=fast accepted")
	}
}

var _ sdktrace.SpanExporter = (*otlpSpanExporter)(nil)

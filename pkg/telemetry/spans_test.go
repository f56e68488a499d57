package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/env"
)

// stubExporter counts the spans it is handed; it waits on gate (when set) and delay
// before answering, and fails while fail is set.
type stubExporter struct {
	gate     chan struct{}
	fail     atomic.Bool // answer errExport
	delay    time.Duration
	exported atomic.Int64
	calls    atomic.Int64
}

func (e *stubExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.calls.Add(1)
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	time.Sleep(e.delay)
	if e.fail.Load() {
		return errExport
	}
	e.exported.Add(int64(len(spans)))
	return nil
}

var errExport = errors.New("collector unreachable")

func (e *stubExporter) Shutdown(context.Context) error { return nil }

// droppedSpans reads loudly.telemetry.spans.dropped by reason.
func droppedSpans(t *testing.T, reader *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	return counterBy(t, reader, "loudly.telemetry.spans.dropped", "reason")
}

// DroppedSpans is droppedSpans for the tests of package telemetry_test, which drive the
// SDK's exporters against the receiver of internal/testenv (that package imports this
// one, so those tests cannot live inside it).
var DroppedSpans = droppedSpans

// counterBy collects reader and sums the int64 counter name by the value of attribute key.
func counterBy(t *testing.T, reader *sdkmetric.ManualReader, name, key string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				v, _ := dp.Attributes.Value(attribute.Key(key))
				got[v.AsString()] += dp.Value
			}
		}
	}
	return got
}

func spanExportProvider(t *testing.T, exp sdktrace.SpanExporter, limit int, opts ...sdktrace.BatchSpanProcessorOption) (*sdktrace.TracerProvider, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sp, err := newSpanExport(exp, limit, mp.Meter("test"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sp)), reader
}

func endSpans(tr trace.Tracer, n int) {
	for range n {
		_, s := tr.Start(context.Background(), "work")
		s.End()
	}
}

func TestSpanExportCountsWhatItCannotHold(t *testing.T) {
	exp := &stubExporter{gate: make(chan struct{})}
	tp, reader := spanExportProvider(t, exp, 16, sdktrace.WithBatchTimeout(time.Millisecond), sdktrace.WithMaxExportBatchSize(4))
	// While the exporter hangs, the spans it holds and those queued behind it count
	// against the bound: exactly 16 are admitted, whatever the batcher has taken so far.
	endSpans(tp.Tracer("test"), 100)
	if got := droppedSpans(t, reader); got["queue_full"] != 84 || got["export_failed"] != 0 {
		t.Fatalf("dropped %v, want queue_full=84 (100 ended, 16 may wait)", got)
	}
	close(exp.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := exp.exported.Load(); got != 16 {
		t.Fatalf("exported %d spans, want the 16 admitted", got)
	}
}

func TestSpanExportCountsFailedExports(t *testing.T) {
	exp := &stubExporter{}
	exp.fail.Store(true)
	tp, reader := spanExportProvider(t, exp, 0, sdktrace.WithMaxExportBatchSize(5))
	endSpans(tp.Tracer("test"), 12)
	if err := tp.ForceFlush(context.Background()); !errors.Is(err, errExport) {
		t.Fatalf("ForceFlush: %v, want the exporter's error", err)
	}
	if got := droppedSpans(t, reader); got["export_failed"] != 12 || got["queue_full"] != 0 {
		t.Fatalf("dropped %v, want export_failed=12", got)
	}
	// Failed batches leave the bound too: with the exporter back, spans are admitted again.
	exp.fail.Store(false)
	endSpans(tp.Tracer("test"), 3)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.exported.Load(); got != 3 {
		t.Fatalf("exported %d spans after the exporter recovered, want 3", got)
	}
}

func TestSpanExportIgnoresUnsampledSpans(t *testing.T) {
	exp := &stubExporter{}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	sp, err := newSpanExport(exp, 1, mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sp), sdktrace.WithSampler(sdktrace.NeverSample()))
	endSpans(tp.Tracer("test"), 10)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := droppedSpans(t, reader)
	var dropped int64
	for _, n := range got {
		dropped += n // each reason is there from the start, at zero
	}
	if dropped != 0 || exp.calls.Load() != 0 || sp.inflight.Load() != 0 {
		t.Fatalf("unsampled spans: dropped %v, %d exports, %d in flight; want none", got, exp.calls.Load(), sp.inflight.Load())
	}
}

// Under concurrent load with a slow exporter every ended span is either exported or
// counted: the batcher behind the bound never drops one silently.
func TestSpanExportLosesNothingUncounted(t *testing.T) {
	exp := &stubExporter{delay: 2 * time.Millisecond}
	tp, reader := spanExportProvider(t, exp, 64, sdktrace.WithBatchTimeout(time.Millisecond), sdktrace.WithMaxExportBatchSize(16))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { endSpans(tp.Tracer("test"), 1000) })
	}
	wg.Wait()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	dropped := droppedSpans(t, reader)
	if got := exp.exported.Load() + dropped["queue_full"]; got != 8000 || dropped["export_failed"] != 0 {
		t.Fatalf("exported %d + dropped %v = %d, want all 8000 ended spans accounted for", exp.exported.Load(), dropped, got)
	}
	if dropped["queue_full"] == 0 {
		t.Fatal("no span dropped: the exporter was meant to fall behind (8000 spans, 64 may wait, 2 ms per 16)")
	}
}

func TestSetupCountsDroppedSpansOnMetrics(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // a collector that hangs
	}))
	defer srv.Close()
	defer close(release)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8")
	r := env.New(func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_BSP_MAX_QUEUE_SIZE": "8", "OTEL_LOGS_EXPORTER": "none"}[k]
	})
	cfg := FromEnv(Config{ServiceName: "test", LogWriter: io.Discard}, r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if cfg.SpanQueue != 8 {
		t.Fatalf("SpanQueue %d from OTEL_BSP_MAX_QUEUE_SIZE=8", cfg.SpanQueue)
	}
	reader := sdkmetric.NewManualReader()
	cfg.MetricReaders = []sdkmetric.Reader{reader}
	tel, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	endSpans(tel.Tracer(), 50)
	if got := droppedSpans(t, reader)["queue_full"]; got != 42 {
		t.Fatalf("queue_full %d, want 42 (50 ended, 8 may wait, the collector hangs)", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = tel.Shutdown(ctx)
}

func TestFromEnvSpanQueue(t *testing.T) {
	if got := FromEnv(Config{ServiceName: "test"}, env.New(func(string) string { return "" })).SpanQueue; got != DefaultSpanQueue {
		t.Errorf("SpanQueue %d with OTEL_BSP_MAX_QUEUE_SIZE unset, want %d", got, DefaultSpanQueue)
	}
	r := env.New(func(k string) string { return map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}[k] })
	FromEnv(Config{ServiceName: "test"}, r)
	if r.Err() == nil {
		t.Fatal("OTEL_BSP_MAX_QUEUE_SIZE=lots accepted")
	}
}

func TestFromEnvSpanBatch(t *testing.T) {
	if got := FromEnv(Config{ServiceName: "test"}, env.New(func(string) string { return "" })).SpanBatch; got != DefaultSpanBatch {
		t.Errorf("SpanBatch %d with OTEL_BSP_MAX_EXPORT_BATCH_SIZE unset, want %d", got, DefaultSpanBatch)
	}
	r := env.New(func(k string) string { return map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "256"}[k] })
	if got := FromEnv(Config{ServiceName: "test"}, r).SpanBatch; got != 256 || r.Err() != nil {
		t.Errorf("SpanBatch %d (%v) from OTEL_BSP_MAX_EXPORT_BATCH_SIZE=256", got, r.Err())
	}
	r = env.New(func(k string) string { return map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0"}[k] })
	FromEnv(Config{ServiceName: "test"}, r)
	if r.Err() == nil {
		t.Fatal("OTEL_BSP_MAX_EXPORT_BATCH_SIZE=0 accepted")
	}
}

// The drop counters are on /metrics at zero from the start, for every reason: a counter
// that first appeared at its first drop would give increase() nothing to rise from, and
// the first burst of drops would go unseen by LoudlyTelemetryDropped.
func TestSetupExportsTheDropCountersAtZeroBeforeAnyDrop(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	tel, err := Setup(context.Background(), Config{ServiceName: "test", LogWriter: io.Discard,
		OTLP: OTLP{Traces: ProtocolHTTP, Metrics: ProtocolHTTP}, Loki: LokiConfig{URL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
	}()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, series := range []string{
		`loudly_telemetry_spans_dropped_total{reason="queue_full"} 0`,
		`loudly_telemetry_spans_dropped_total{reason="export_failed"} 0`,
		`loudly_telemetry_spans_dropped_total{reason="rejected"} 0`,
		`loudly_telemetry_log_dropped_total{sink="loki"} 0`,
	} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s before any drop", series)
		}
	}
}

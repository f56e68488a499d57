package telemetry

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// richSpans covers every field the encoder writes: each attribute type, events, links
// (local and remote, with attributes), every status and kind, local and remote parents, a
// trace state, dropped counts, two resources and several scopes, one of them empty.
func richSpans(t testing.TB) []sdktrace.ReadOnlySpan {
	t.Helper()
	ts, err := trace.ParseTraceState("vendor=value,other=x")
	if err != nil {
		t.Fatal(err)
	}
	sc := func(i byte, remote bool) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, 2, 3, i}, SpanID: trace.SpanID{9, i}, TraceFlags: trace.FlagsSampled, Remote: remote,
		})
	}
	resA := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.40.0", attribute.String("service.name", "order"), attribute.Int("n", 1))
	resB := resource.NewSchemaless(attribute.String("service.name", "inventory"))
	scopeA := instrumentation.Scope{Name: "loudly", Version: "v1", SchemaURL: "https://example/s", Attributes: attribute.NewSet(attribute.Bool("x", true))}
	scopeB := instrumentation.Scope{Name: "otelhttp"}
	attrs := []attribute.KeyValue{
		attribute.String("s", "text"), attribute.String("empty", ""), attribute.Bool("b", true), attribute.Bool("f", false),
		attribute.String("long", strings.Repeat("lengths of two bytes ", 10)), // 210 bytes: the length varints' second byte
		attribute.Int64("i", -42), attribute.Int64("zero", 0), attribute.Float64("d", 3.25),
		attribute.StringSlice("ss", []string{"a", ""}), attribute.Int64Slice("is", []int64{1, -2}),
		attribute.Float64Slice("ds", []float64{0.5}), attribute.BoolSlice("bs", []bool{true, false}),
		{Key: "bytes", Value: attribute.ByteSliceValue([]byte{0, 1, 2})},
		{Key: "slice", Value: attribute.SliceValue(attribute.StringValue("x"), attribute.IntValue(7))},
		{Key: "map", Value: attribute.MapValue(attribute.String("k", "v"), attribute.Int("n", 3))},
		{Key: "none", Value: attribute.Value{}},
	}
	now := time.Unix(1_764_000_000, 123456789)
	var stubs tracetest.SpanStubs
	for i := range 12 {
		b := byte(i)
		st := tracetest.SpanStub{
			Name:                 "span",
			SpanContext:          sc(b, false),
			SpanKind:             trace.SpanKind(i % 6),
			StartTime:            now,
			EndTime:              now.Add(time.Duration(i) * time.Millisecond),
			Resource:             resA,
			InstrumentationScope: scopeA,
		}
		switch i % 4 {
		case 0:
			st.Attributes = attrs
			st.Status = sdktrace.Status{Code: codes.Error, Description: "it broke"}
			st.DroppedAttributes, st.DroppedEvents, st.DroppedLinks = 2, 3, 4
		case 1:
			st.Parent = sc(100+b, true)
			st.SpanContext = trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3, b}, SpanID: trace.SpanID{9, b}, TraceFlags: trace.FlagsSampled, TraceState: ts})
			st.Events = []sdktrace.Event{
				{Name: "decision", Time: now, Attributes: attrs[:5], DroppedAttributeCount: 1},
				{Name: "bare"},
			}
			st.Status = sdktrace.Status{Code: codes.Ok}
			st.InstrumentationScope = scopeB
		case 2:
			st.Parent = sc(100+b, false)
			st.Links = []sdktrace.Link{
				{SpanContext: sc(200+b, true), Attributes: attrs[:3], DroppedAttributeCount: 5},
				{SpanContext: sc(210+b, false)},
			}
			st.Resource = resB
		case 3:
			st.InstrumentationScope = instrumentation.Scope{}
			st.Name = ""
		}
		stubs = append(stubs, st)
	}
	return stubs.Snapshots()
}

// sdkRequest is what the SDK's own OTLP/HTTP exporter sends for spans.
func sdkRequest(t *testing.T, spans []sdktrace.ReadOnlySpan) []byte {
	t.Helper()
	var (
		mu   sync.Mutex
		body []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		body = b
		mu.Unlock()
	}))
	defer srv.Close()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return body
}

// decodeRequest reads an export and puts its resources and scopes in one order (the SDK's
// exporter groups them through a map).
func decodeRequest(t *testing.T, b []byte) *coltrace.ExportTraceServiceRequest {
	t.Helper()
	req := &coltrace.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		t.Fatalf("not an ExportTraceServiceRequest: %v", err)
	}
	for _, rs := range req.ResourceSpans {
		slices.SortFunc(rs.ScopeSpans, func(a, b *tracepb.ScopeSpans) int {
			return cmp.Compare(a.GetScope().GetName(), b.GetScope().GetName())
		})
	}
	slices.SortFunc(req.ResourceSpans, func(a, b *tracepb.ResourceSpans) int {
		return cmp.Compare(protojson.Format(a.GetResource()), protojson.Format(b.GetResource()))
	})
	return req
}

func TestSpanEncoderWritesWhatTheSDKExporterSends(t *testing.T) {
	spans := richSpans(t)
	want := decodeRequest(t, sdkRequest(t, spans))
	var enc spanEncoder
	got := decodeRequest(t, enc.encode(spans))
	if !proto.Equal(got, want) {
		t.Fatalf("encoded request differs from the SDK exporter's\n got: %s\nwant: %s", protojson.Format(got), protojson.Format(want))
	}
	if n := len(want.ResourceSpans); n != 2 {
		t.Fatalf("%d resources, the test means two", n)
	}
	// The buffer is reused: a second, smaller request must not carry the first's bytes.
	got = decodeRequest(t, enc.encode(spans[:3]))
	want = decodeRequest(t, sdkRequest(t, spans[:3]))
	if !proto.Equal(got, want) {
		t.Fatalf("second request differs\n got: %s\nwant: %s", protojson.Format(got), protojson.Format(want))
	}
}

// loudlySpans are spans of the kind the services end most: a consumer span with eight
// attributes, a decision event with seven and a link to its batch.
func loudlySpans(n int) []sdktrace.ReadOnlySpan {
	res := resource.NewSchemaless(attribute.String("service.name", "inventory"), attribute.String("service.instance.id", "0193"))
	var stubs tracetest.SpanStubs
	now := time.Now()
	for i := range n {
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, byte(i), byte(i >> 8)}, SpanID: trace.SpanID{2, byte(i)}, TraceFlags: trace.FlagsSampled})
		batch := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{3}, SpanID: trace.SpanID{4}, TraceFlags: trace.FlagsSampled})
		stubs = append(stubs, tracetest.SpanStub{
			Name: "orders.placed process", SpanContext: sc, Parent: batch, SpanKind: trace.SpanKindConsumer,
			StartTime: now, EndTime: now.Add(time.Millisecond), Resource: res,
			InstrumentationScope: instrumentation.Scope{Name: "loudly"},
			Attributes: []attribute.KeyValue{
				attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", "orders.placed"),
				attribute.String("messaging.operation.type", "process"), attribute.Int("messaging.batch.message_count", 12),
				attribute.String("messaging.message.id", "abcdef-1234"), attribute.String("order.id", "0193abcdef-1234-5678"),
				attribute.String("messaging.consumer.group.name", "inventory"), attribute.Int64("messaging.nats.stream_sequence", 12345),
			},
			Events: []sdktrace.Event{{Name: "decision", Time: now, Attributes: []attribute.KeyValue{
				attribute.String("outcome", "applied"), attribute.String("stage", "reserve"), attribute.String("reason", "reserved"),
				attribute.String("order.id", "0193abcdef"), attribute.String("service", "inventory"), attribute.Int("lines", 2), attribute.Bool("retry", false),
			}}},
			Links: []sdktrace.Link{{SpanContext: batch}},
		})
	}
	return stubs.Snapshots()
}

func TestSpanEncoderAllocatesNothingOnceGrown(t *testing.T) {
	spans := loudlySpans(256)
	var enc spanEncoder
	enc.encode(spans)
	if n := testing.AllocsPerRun(20, func() { enc.encode(spans) }); n != 0 {
		t.Fatalf("%v allocations per request of 256 spans, want 0", n)
	}
}

// BenchmarkSpanExport compares the two encoders end to end (encode and POST to a
// collector that reads and discards): `go test -bench SpanExport ./pkg/telemetry`.
func BenchmarkSpanExport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	spans := loudlySpans(512)
	sdk, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"))
	if err != nil {
		b.Fatal(err)
	}
	direct := newOTLPSpanExporter(otlpHTTPConfig{URL: srv.URL + "/v1/traces", Timeout: 10 * time.Second})
	for _, c := range []struct {
		name string
		exp  sdktrace.SpanExporter
	}{{"sdk", sdk}, {"direct", direct}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.exp.ExportSpans(context.Background(), spans); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
		})
	}
}

// BenchmarkSpanEncode is the encoder alone, on a request of 512 spans of the services'
// usual kind: `go test -bench SpanEncode ./pkg/telemetry`.
func BenchmarkSpanEncode(b *testing.B) {
	spans := loudlySpans(512)
	var enc spanEncoder
	b.ReportAllocs()
	for b.Loop() {
		enc.encode(spans)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(spans)), "ns/span")
	b.ReportMetric(float64(len(enc.encode(spans)))/float64(len(spans)), "bytes/span")
}

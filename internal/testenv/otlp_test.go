package testenv

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"testing"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

var (
	traceA, traceB = bytes.Repeat([]byte{0xa}, 16), bytes.Repeat([]byte{0xb}, 16)
	threeSpans     = &coltrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: traceA, SpanId: []byte{1, 0, 0, 0, 0, 0, 0, 0}, Name: "a1"},
			{TraceId: traceA, SpanId: []byte{2, 0, 0, 0, 0, 0, 0, 0}, Name: "a2"},
			{TraceId: traceB, SpanId: []byte{3, 0, 0, 0, 0, 0, 0, 0}, Name: "b1"},
		}}},
	}}}
	oneLog = &collogs.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{ScopeLogs: []*logspb.ScopeLogs{{
		LogRecords: []*logspb.LogRecord{{Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "hello"}}}},
	}}}}}
	twoPoints = &colmetrics.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{ScopeMetrics: []*metricspb.ScopeMetrics{{
		Metrics: []*metricspb.Metric{{Name: "loudly.decisions", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
			DataPoints: []*metricspb.NumberDataPoint{{}, {}}}}}},
	}}}}}
)

func post(t *testing.T, url string, body []byte, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOTLPReceiver_OverHTTP(t *testing.T) {
	o := OTLPReceiver(t)
	traces, logs := marshal(t, threeSpans), marshal(t, oneLog)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(marshal(t, twoPoints))
	_ = zw.Close()
	for _, p := range []struct {
		path   string
		body   []byte
		header map[string]string
	}{
		{OTLPTraces, traces, nil},
		{OTLPTraces, traces, map[string]string{"Authorization": "Bearer s3cret"}},
		{OTLPLogs, logs, nil},
		{OTLPMetrics, gz.Bytes(), map[string]string{"Content-Encoding": "gzip"}},
	} {
		if code := post(t, o.URL+p.path, p.body, p.header); code != http.StatusOK {
			t.Fatalf("POST %s: %d", p.path, code)
		}
	}
	if got := o.Spans(); got != 6 {
		t.Errorf("Spans() = %d, want 6 (3 spans exported twice)", got)
	}
	if got, want := o.Bytes(OTLPTraces), int64(2*len(traces)); got != want {
		t.Errorf("Bytes(traces) = %d, want %d", got, want)
	}
	if got, want := o.Bytes(OTLPMetrics), int64(gz.Len()); got != want {
		t.Errorf("Bytes(metrics) = %d, want %d: the size as sent, compressed", got, want)
	}
	if o.Requests(OTLPTraces) != 2 || o.Requests(OTLPLogs) != 1 || o.Requests(OTLPMetrics) != 1 {
		t.Errorf("requests: %s", o)
	}
	if !o.HasTrace("0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a") || o.HasTrace("0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c") {
		t.Error("HasTrace does not tell an exported trace from one never exported")
	}
	if got := o.MetricPoints("loudly.decisions"); got != 2 {
		t.Errorf("MetricPoints = %d, want 2 (decoded from a gzip body)", got)
	}
	if got := o.LogBodies(); len(got) != 1 || got[0] != "hello" {
		t.Errorf("LogBodies = %q", got)
	}
	if e, _ := o.Last(OTLPTraces); e.Protocol != "http/protobuf" || e.Header.Get("Authorization") != "Bearer s3cret" || e.Compression != "" {
		t.Errorf("last trace export %+v", e)
	}
	if e, _ := o.Last(OTLPMetrics); e.Compression != "gzip" {
		t.Errorf("last metric export %+v, want gzip", e)
	}
	// What is not an OTLP export is refused, and nothing of it counted.
	for _, bad := range []struct {
		path   string
		body   []byte
		header map[string]string
		code   int
	}{
		{OTLPTraces, []byte{0x0a, 0x7f, 0x01}, nil, http.StatusBadRequest},                                           // truncated
		{OTLPTraces, traces, map[string]string{"Content-Encoding": "br"}, http.StatusUnsupportedMediaType},           // unknown encoding
		{OTLPTraces, traces, map[string]string{"Content-Type": "application/json"}, http.StatusUnsupportedMediaType}, // OTLP/JSON
		{"/v1/profiles", traces, nil, http.StatusNotFound},
	} {
		if code := post(t, o.URL+bad.path, bad.body, bad.header); code != bad.code {
			t.Errorf("POST %s %v: %d, want %d", bad.path, bad.header, code, bad.code)
		}
	}
	if o.Spans() != 6 || o.Requests(OTLPTraces) != 2 {
		t.Errorf("after refused exports: %s", o)
	}
}

func TestOTLPReceiver_OverGRPC(t *testing.T) {
	o := StartOTLP(t, OTLPConfig{RejectSpans: 1})
	conn, err := grpc.NewClient(o.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer s3cret")
	resp, err := coltrace.NewTraceServiceClient(conn).Export(ctx, threeSpans, grpc.UseCompressor(grpcgzip.Name))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetPartialSuccess().GetRejectedSpans(); got != 1 {
		t.Errorf("partial success rejected %d spans, want the 1 configured", got)
	}
	if _, err := colmetrics.NewMetricsServiceClient(conn).Export(context.Background(), twoPoints); err != nil {
		t.Fatal(err)
	}
	if _, err := collogs.NewLogsServiceClient(conn).Export(context.Background(), oneLog); err != nil {
		t.Fatal(err)
	}
	if o.Spans() != 3 || !o.HasTrace("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b") || o.MetricPoints("loudly.decisions") != 2 || len(o.LogBodies()) != 1 {
		t.Errorf("received %s", o)
	}
	e, _ := o.Last(OTLPTraces)
	if e.Protocol != "grpc" || e.Header.Get("authorization") != "Bearer s3cret" || e.Compression != "gzip" {
		t.Errorf("last trace export %+v, want grpc with the header, gzip", e)
	}
	if e, _ := o.Last(OTLPMetrics); e.Compression != "" {
		t.Errorf("last metric export %+v, want uncompressed", e)
	}
	if o.Bytes(OTLPTraces) == 0 || o.Bytes(OTLPLogs) == 0 {
		t.Errorf("bytes on the wire: traces %d, logs %d", o.Bytes(OTLPTraces), o.Bytes(OTLPLogs))
	}
}

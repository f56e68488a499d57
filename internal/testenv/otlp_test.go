package testenv

import (
	"bytes"
	"net/http"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestOTLPReceiver_CountsWhatIsExported(t *testing.T) {
	o := OTLPReceiver(t)
	traceA, traceB := bytes.Repeat([]byte{0xa}, 16), bytes.Repeat([]byte{0xb}, 16)
	req := &coltrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: traceA, SpanId: []byte{1, 0, 0, 0, 0, 0, 0, 0}, Name: "a1"},
			{TraceId: traceA, SpanId: []byte{2, 0, 0, 0, 0, 0, 0, 0}, Name: "a2"},
			{TraceId: traceB, SpanId: []byte{3, 0, 0, 0, 0, 0, 0, 0}, Name: "b1"},
		}}},
	}}}
	traces, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	logs := []byte("not parsed, only counted")
	for _, p := range []struct {
		path string
		body []byte
	}{{"/v1/traces", traces}, {"/v1/traces", traces}, {"/v1/logs", logs}} {
		resp, err := http.Post(o.URL+p.path, "application/x-protobuf", bytes.NewReader(p.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %s", p.path, resp.Status)
		}
	}
	if got := o.Spans(); got != 6 {
		t.Errorf("Spans() = %d, want 6 (3 spans exported twice)", got)
	}
	if got, want := o.Bytes("/v1/traces"), int64(2*len(traces)); got != want {
		t.Errorf("Bytes(/v1/traces) = %d, want %d", got, want)
	}
	if got, want := o.Bytes("/v1/logs"), int64(len(logs)); got != want {
		t.Errorf("Bytes(/v1/logs) = %d, want %d", got, want)
	}
	if o.Requests("/v1/traces") != 2 || o.Requests("/v1/logs") != 1 || o.Requests("/v1/metrics") != 0 {
		t.Errorf("requests: traces %d, logs %d, metrics %d; want 2, 1, 0",
			o.Requests("/v1/traces"), o.Requests("/v1/logs"), o.Requests("/v1/metrics"))
	}
	if !o.HasTrace("0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a") || o.HasTrace("0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c") {
		t.Error("HasTrace does not tell an exported trace from one never exported")
	}
	// A body that is not a trace export is refused, and nothing of it counted.
	resp, err := http.Post(o.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader([]byte{0x0a, 0x7f, 0x01}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || o.Spans() != 6 {
		t.Errorf("a truncated export: %s, Spans() = %d; want 400 Bad Request and 6", resp.Status, o.Spans())
	}
}

package telemetry

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// BenchmarkSpanExport is the SDK's span exporter, as Setup builds it from the standard
// variables, sending requests of 512 spans shaped like the services' to a collector on
// loopback that discards them: over OTLP/HTTP (the server only reads the body) and
// OTLP/gRPC (the server decodes the request, as every gRPC server must), each plain and
// with OTEL_EXPORTER_OTLP_COMPRESSION=gzip.
//
//	go test -run '^$' -bench SpanExport -benchtime 2s -count 5 ./pkg/telemetry
//
// It reports the time and allocations per span, which the exporter spends on the
// service's cores, and the bytes per span on the wire.
func BenchmarkSpanExport(b *testing.B) {
	var wire atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		wire.Add(n)
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer(grpc.StatsHandler(wireCounter{&wire}))
	coltrace.RegisterTraceServiceServer(gs, discardTraces{})
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()

	spans := loudlySpans(512)
	for _, c := range []struct {
		name     string
		protocol Protocol
		endpoint string
		gzip     bool
	}{
		{"http", ProtocolHTTP, srv.URL, false},
		{"http-gzip", ProtocolHTTP, srv.URL, true},
		{"grpc", ProtocolGRPC, "http://" + ln.Addr().String(), false},
		{"grpc-gzip", ProtocolGRPC, "http://" + ln.Addr().String(), true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", c.endpoint)
			b.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", map[bool]string{false: "none", true: "gzip"}[c.gzip])
			exp, err := newSpanExporter(context.Background(), c.protocol)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = exp.Shutdown(context.Background()) }()
			wire.Store(0)
			b.ReportAllocs()
			for b.Loop() {
				if err := exp.ExportSpans(context.Background(), spans); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N * len(spans))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
			b.ReportMetric(float64(wire.Load())/n, "wire-B/span")
		})
	}
}

type discardTraces struct {
	coltrace.UnimplementedTraceServiceServer
}

func (discardTraces) Export(context.Context, *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// wireCounter adds the size of each gRPC request as sent (compressed, if it was).
type wireCounter struct{ n *atomic.Int64 }

func (c wireCounter) HandleRPC(_ context.Context, s stats.RPCStats) {
	if p, ok := s.(*stats.InPayload); ok {
		c.n.Add(int64(p.WireLength))
	}
}
func (wireCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (wireCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (wireCounter) HandleConn(context.Context, stats.ConnStats)                       {}

// loudlySpans are n spans of the kind the consumers end most: a process span with the
// messaging attributes, its decision event and a link to its batch's span. Ids, times and
// the order id differ from span to span as they do in a service (random ids do not
// compress), so the gzip figures are not flattered.
func loudlySpans(n int) []sdktrace.ReadOnlySpan {
	res := resource.NewSchemaless(attribute.String("service.name", "inventory"), attribute.String("service.instance.id", "0193"))
	rnd := rand.New(rand.NewPCG(1, 2))
	var stubs tracetest.SpanStubs
	now := time.Now()
	var batch trace.SpanContext
	for i := range n {
		var tid trace.TraceID
		var sid trace.SpanID
		binary.LittleEndian.PutUint64(tid[:8], rnd.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], rnd.Uint64())
		binary.LittleEndian.PutUint64(sid[:], rnd.Uint64())
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
		if i%64 == 0 { // a batch of 64 messages, one span of its own
			binary.LittleEndian.PutUint64(sid[:], rnd.Uint64())
			batch = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
		}
		start := now.Add(time.Duration(rnd.IntN(int(time.Second))))
		orderID := fmt.Sprintf("0193%x-%x", rnd.Uint32(), rnd.Uint32())
		stubs = append(stubs, tracetest.SpanStub{
			Name: "orders.placed process", SpanContext: sc, Parent: batch, SpanKind: trace.SpanKindConsumer,
			StartTime: start, EndTime: start.Add(time.Duration(rnd.IntN(int(5 * time.Millisecond)))), Resource: res,
			InstrumentationScope: instrumentation.Scope{Name: "loudly"},
			Attributes: []attribute.KeyValue{
				attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", "orders.placed"),
				attribute.String("messaging.operation.type", "process"), attribute.Int("messaging.batch.message_count", 12),
				attribute.String("messaging.message.id", orderID), attribute.String("order.id", orderID),
				attribute.String("messaging.consumer.group.name", "inventory"), attribute.Int64("messaging.nats.stream_sequence", int64(100000+i)),
			},
			Events: []sdktrace.Event{{Name: "decision", Time: start, Attributes: []attribute.KeyValue{
				attribute.String("outcome", "applied"), attribute.String("stage", "reserve"), attribute.String("reason", "reserved"),
				attribute.String("order.id", orderID), attribute.String("service", "inventory"), attribute.Int("lines", 2), attribute.Bool("retry", false),
			}}},
			Links: []sdktrace.Link{{SpanContext: batch}},
		})
	}
	return stubs.Snapshots()
}

package testenv

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // the receiver takes what OTEL_EXPORTER_OTLP_COMPRESSION=gzip sends
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"
)

// OTLP is an OTLP receiver for tests, on both protocols: OTLP/HTTP at URL and OTLP/gRPC
// at GRPCAddr. It decodes every export with the OTLP project's own generated types
// (go.opentelemetry.io/proto/otlp) and keeps what a test asks about: the trace ids of
// the spans, the names of the metrics, the bodies of the log records, and for each
// signal the requests, the bytes as sent, and the headers and compression of the last
// export. A test checks that what a service points at (an exemplar, a log line) is a
// trace the service really exported, and that the standard OTEL_EXPORTER_OTLP_*
// settings reached the wire.
type OTLP struct {
	URL      string // OTLP/HTTP base URL: OTEL_EXPORTER_OTLP_ENDPOINT for http/protobuf
	GRPCAddr string // host:port of OTLP/gRPC: OTEL_EXPORTER_OTLP_ENDPOINT is GRPCURL()
	tls      bool

	cfg  OTLPConfig
	bufs sync.Pool // *bytes.Buffer: request bodies, read into reused memory

	mu       sync.Mutex
	traceIDs map[[16]byte]int
	metrics  map[string]int // data points by metric name
	logs     []string       // log record bodies
	spans    int
	requests map[string]int
	bytes    map[string]int64
	last     map[string]Export
}

// OTLPConfig changes how StartOTLP's receiver serves.
type OTLPConfig struct {
	// TLS, when set, serves both protocols over TLS with it (a server certificate, and
	// ClientAuth for mutual TLS).
	TLS *tls.Config
	// RejectSpans answers every trace export with an OTLP partial success refusing this
	// many of its spans, as a collector whose limits or processors refuse some does.
	RejectSpans int64
}

// Export is what one export carried besides its data.
type Export struct {
	Protocol    string      // "http/protobuf" or "grpc"
	Header      http.Header // HTTP headers, or gRPC metadata
	Compression string      // Content-Encoding, or grpc-encoding; "" when uncompressed
}

// The OTLP/HTTP paths, which also name the signals of gRPC exports in Requests, Bytes
// and Last.
const (
	OTLPTraces  = "/v1/traces"
	OTLPMetrics = "/v1/metrics"
	OTLPLogs    = "/v1/logs"
)

// OTLPReceiver starts a plain-text receiver on loopback ports, closed at cleanup.
func OTLPReceiver(t testing.TB) *OTLP {
	t.Helper()
	return StartOTLP(t, OTLPConfig{})
}

// StartOTLP starts a receiver configured by cfg on loopback ports, closed at cleanup.
func StartOTLP(t testing.TB, cfg OTLPConfig) *OTLP {
	t.Helper()
	o := &OTLP{cfg: cfg, tls: cfg.TLS != nil, traceIDs: map[[16]byte]int{}, metrics: map[string]int{},
		requests: map[string]int{}, bytes: map[string]int64{}, last: map[string]Export{}}

	srv := httptest.NewUnstartedServer(http.HandlerFunc(o.serveHTTP))
	if cfg.TLS != nil {
		srv.TLS = cfg.TLS.Clone()
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	o.URL = srv.URL

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := []grpc.ServerOption{grpc.StatsHandler(grpcStats{o})}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS.Clone())))
	}
	gs := grpc.NewServer(opts...)
	coltrace.RegisterTraceServiceServer(gs, grpcTraces{o: o})
	colmetrics.RegisterMetricsServiceServer(gs, grpcMetrics{o: o})
	collogs.RegisterLogsServiceServer(gs, grpcLogs{o: o})
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	o.GRPCAddr = ln.Addr().String()
	return o
}

// GRPCURL is the receiver's OTLP/gRPC endpoint as OTEL_EXPORTER_OTLP_ENDPOINT takes it.
func (o *OTLP) GRPCURL() string {
	if o.tls {
		return "https://" + o.GRPCAddr
	}
	return "http://" + o.GRPCAddr
}

func (o *OTLP) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var req, resp proto.Message
	switch r.URL.Path {
	case OTLPTraces:
		req, resp = &coltrace.ExportTraceServiceRequest{}, o.traceResponse()
	case OTLPMetrics:
		req, resp = &colmetrics.ExportMetricsServiceRequest{}, &colmetrics.ExportMetricsServiceResponse{}
	case OTLPLogs:
		req, resp = &collogs.ExportLogsServiceRequest{}, &collogs.ExportLogsServiceResponse{}
	default:
		http.NotFound(w, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "Content-Type "+ct+": the receiver takes application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
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
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if buf.Len() > maxBody {
		http.Error(w, "export larger than the test receiver takes", http.StatusRequestEntityTooLarge)
		return
	}
	sent := int64(buf.Len())
	body := buf.Bytes()
	enc := r.Header.Get("Content-Encoding")
	switch enc {
	case "":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err == nil {
			body, err = io.ReadAll(io.LimitReader(zr, maxBody))
		}
		if err != nil {
			http.Error(w, "gzip: "+err.Error(), http.StatusBadRequest)
			return
		}
	default:
		http.Error(w, "Content-Encoding "+enc+": the receiver takes gzip or none", http.StatusUnsupportedMediaType)
		return
	}
	if err := proto.Unmarshal(body, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.record(r.URL.Path, req, sent, Export{Protocol: "http/protobuf", Header: r.Header.Clone(), Compression: enc})
	out, err := proto.Marshal(resp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// maxBody bounds what is read of one export (the SDK exporters send far less).
const maxBody = 64 << 20

func (o *OTLP) traceResponse() *coltrace.ExportTraceServiceResponse {
	if o.cfg.RejectSpans == 0 {
		return &coltrace.ExportTraceServiceResponse{}
	}
	return &coltrace.ExportTraceServiceResponse{PartialSuccess: &coltrace.ExportTracePartialSuccess{
		RejectedSpans: o.cfg.RejectSpans, ErrorMessage: "the test receiver refuses some spans"}}
}

// record keeps what an export of signal (an OTLP/HTTP path) carried; sent is its size as
// sent, before decompression.
func (o *OTLP) record(signal string, req proto.Message, sent int64, e Export) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests[signal]++
	o.bytes[signal] += sent
	o.last[signal] = e
	switch req := req.(type) {
	case *coltrace.ExportTraceServiceRequest:
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					o.spans++
					if len(sp.TraceId) == 16 {
						o.traceIDs[[16]byte(sp.TraceId)]++
					}
				}
			}
		}
	case *colmetrics.ExportMetricsServiceRequest:
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					o.metrics[m.Name] += dataPoints(m)
				}
			}
		}
	case *collogs.ExportLogsServiceRequest:
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, lr := range sl.LogRecords {
					o.logs = append(o.logs, lr.GetBody().GetStringValue())
				}
			}
		}
	}
}

func dataPoints(m *metricspb.Metric) int {
	switch d := m.Data.(type) {
	case *metricspb.Metric_Sum:
		return len(d.Sum.DataPoints)
	case *metricspb.Metric_Gauge:
		return len(d.Gauge.DataPoints)
	case *metricspb.Metric_Histogram:
		return len(d.Histogram.DataPoints)
	case *metricspb.Metric_ExponentialHistogram:
		return len(d.ExponentialHistogram.DataPoints)
	case *metricspb.Metric_Summary:
		return len(d.Summary.DataPoints)
	}
	return 0
}

// The gRPC services hand their decoded requests to record; the stats handler below adds
// what only the transport knows (bytes on the wire, compression).
type (
	grpcTraces struct {
		coltrace.UnimplementedTraceServiceServer
		o *OTLP
	}
	grpcMetrics struct {
		colmetrics.UnimplementedMetricsServiceServer
		o *OTLP
	}
	grpcLogs struct {
		collogs.UnimplementedLogsServiceServer
		o *OTLP
	}
)

func (s grpcTraces) Export(ctx context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	s.o.recordGRPC(ctx, OTLPTraces, req)
	return s.o.traceResponse(), nil
}

func (s grpcMetrics) Export(ctx context.Context, req *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	s.o.recordGRPC(ctx, OTLPMetrics, req)
	return &colmetrics.ExportMetricsServiceResponse{}, nil
}

func (s grpcLogs) Export(ctx context.Context, req *collogs.ExportLogsServiceRequest) (*collogs.ExportLogsServiceResponse, error) {
	s.o.recordGRPC(ctx, OTLPLogs, req)
	return &collogs.ExportLogsServiceResponse{}, nil
}

// rpcInfo is what the stats handler learnt of one call, found again by its context.
type rpcInfo struct {
	compression string
	wire        int64
}

type rpcInfoKey struct{}

func (o *OTLP) recordGRPC(ctx context.Context, signal string, req proto.Message) {
	md, _ := metadata.FromIncomingContext(ctx)
	h := http.Header{}
	for k, vs := range md {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	info, _ := ctx.Value(rpcInfoKey{}).(*rpcInfo)
	if info == nil {
		info = &rpcInfo{}
	}
	o.record(signal, req, info.wire, Export{Protocol: "grpc", Header: h, Compression: info.compression})
}

// grpcStats records each call's compression and the size of its request on the wire.
type grpcStats struct{ o *OTLP }

func (grpcStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, rpcInfoKey{}, &rpcInfo{})
}

func (grpcStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	info, _ := ctx.Value(rpcInfoKey{}).(*rpcInfo)
	if info == nil {
		return
	}
	// The header and the payload arrive before the method runs, on the call's goroutine.
	switch s := s.(type) {
	case *stats.InHeader:
		info.compression = s.Compression
		if info.compression == "identity" {
			info.compression = ""
		}
	case *stats.InPayload:
		info.wire += int64(s.WireLength)
	}
}

func (grpcStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (grpcStats) HandleConn(context.Context, stats.ConnStats)                       {}

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

// Requests returns how many exports of a signal arrived (OTLPTraces, OTLPMetrics,
// OTLPLogs), over either protocol.
func (o *OTLP) Requests(signal string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.requests[signal]
}

// Bytes returns how many request bytes of a signal arrived, as sent (compressed if the
// exporter compressed them): what an exporter costs the network.
func (o *OTLP) Bytes(signal string) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes[signal]
}

// Last returns what the last export of a signal carried besides its data; ok is false
// before the first.
func (o *OTLP) Last(signal string) (e Export, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok = o.last[signal]
	return e, ok
}

// Spans returns how many spans were exported.
func (o *OTLP) Spans() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.spans
}

// MetricPoints returns how many data points of the metric called name were exported.
func (o *OTLP) MetricPoints(name string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.metrics[name]
}

// LogBodies returns the bodies of the log records exported so far.
func (o *OTLP) LogBodies() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.logs...)
}

// String summarises what arrived, for failure messages.
func (o *OTLP) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var names []string
	for n := range o.metrics {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprintf("%d spans, metrics %s, %d log records; requests %v", o.spans, strings.Join(names, ","), len(o.logs), o.requests)
}

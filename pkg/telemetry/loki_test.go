package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/grafana/loki/pkg/push"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// fakeLoki decodes what a Loki push endpoint receives: snappy-compressed protobuf, the
// format every Loki version accepts.
type fakeLoki struct {
	mu      sync.Mutex
	streams []lokiStream
}

type lokiStream struct {
	Stream map[string]string
	Values [][2]string
}

var labelPair = regexp.MustCompile(`(\w+)="([^"]*)"`)

func (f *fakeLoki) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	buf, err := snappy.Decode(nil, raw)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var req push.PushRequest
	if err := req.Unmarshal(buf); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range req.Streams {
		ls := lokiStream{Stream: map[string]string{}}
		for _, m := range labelPair.FindAllStringSubmatch(s.Labels, -1) {
			ls.Stream[m[1]] = m[2]
		}
		for _, e := range s.Entries {
			ls.Values = append(ls.Values, [2]string{e.Timestamp.String(), e.Line})
		}
		f.streams = append(f.streams, ls)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeLoki) lines() []lokiStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]lokiStream(nil), f.streams...)
}

func setupWithLoki(t *testing.T, url string, buffer int) (*Telemetry, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	tel, err := Setup(context.Background(), Config{
		ServiceName: "order", LogWriter: io.Discard,
		Loki:          LokiConfig{URL: url, Buffer: buffer},
		MetricReaders: []sdkmetric.Reader{reader},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tel, reader
}

func TestLoki_PushesLinesWithServiceAndLevelLabelsAndTraceIDsInTheLine(t *testing.T) {
	loki := &fakeLoki{}
	srv := httptest.NewServer(loki)
	defer srv.Close()
	tel, _ := setupWithLoki(t, srv.URL+"/loki/api/v1/push", 0)

	ctx, span := tel.Tracer().Start(context.Background(), "work")
	tel.Decisions.Record(ctx, Decision{Stage: StageConsume, Outcome: Invalid, Reason: "malformed_json", EventID: "e-1", Key: "o-1"})
	span.End()
	tel.Logger.Info("plain line")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	var decision, plain bool
	for _, s := range loki.lines() {
		if len(s.Stream) != 2 || s.Stream["service"] != "order" || s.Stream["level"] == "" {
			t.Errorf("labels %v, want exactly service=order and level", s.Stream)
		}
		for _, v := range s.Values {
			line := map[string]any{}
			if err := json.Unmarshal([]byte(v[1]), &line); err != nil {
				t.Fatalf("line %q is not JSON: %v", v[1], err)
			}
			switch line["msg"] {
			case "decision":
				decision = true
				if s.Stream["level"] != "error" || line["trace_id"] != span.SpanContext().TraceID().String() || line["key"] != "o-1" {
					t.Errorf("decision line %v in stream %v: want level error, the span's trace id and key", line, s.Stream)
				}
			case "plain line":
				plain = s.Stream["level"] == "info"
			}
		}
	}
	if !decision || !plain {
		t.Fatalf("lines received: decision=%v plain(info)=%v; streams %v", decision, plain, loki.lines())
	}
}

func TestLoki_ADeadEndpointNeverBlocksLoggingAndDropsAreCounted(t *testing.T) {
	// A listener that accepts and never answers: the worst kind of dead Loki.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	tel, reader := setupWithLoki(t, "http://"+ln.Addr().String()+"/loki/api/v1/push", 100)

	start := time.Now()
	for i := range 5000 {
		tel.Logger.Info("line", "i", i, "padding", strings.Repeat("x", 100))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("logging 5000 lines took %s with Loki hanging: the sink blocks", took)
	}
	var dropped int64
	for _, n := range counterBy(t, reader, "loudly.telemetry.log.dropped", "sink") {
		dropped += n
	}
	if dropped == 0 {
		t.Fatal("no drops counted although Loki never answered and the buffer holds 100 lines")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_ = tel.Shutdown(ctx) // bounded: a hanging Loki must not hold the process either
}

func TestLevelOf(t *testing.T) {
	var buf bytes.Buffer
	tel, err := Setup(context.Background(), Config{ServiceName: "x", LogWriter: &buf, LogLevel: slog.LevelDebug})
	if err != nil {
		t.Fatal(err)
	}
	for level, want := range map[slog.Level]string{
		slog.LevelDebug: "debug", slog.LevelInfo: "info", slog.LevelWarn: "warn", slog.LevelError: "error",
		slog.LevelInfo + 2: "info+2", // a level of the program's own: its name, lower-cased
	} {
		buf.Reset()
		tel.Logger.Log(context.Background(), level, "m")
		if got := levelOf(buf.Bytes()); got != want {
			t.Errorf("levelOf(%q) = %q, want %q", buf.String(), got, want)
		}
	}
}

// Every line goes through Write: it copies the line (it outlives the caller's buffer) and
// allocates nothing else, its labels shared with every line of its level.
func TestLoki_WriteAllocatesOnlyTheLinesCopy(t *testing.T) {
	srv := httptest.NewServer(&fakeLoki{})
	defer srv.Close()
	s, err := newLokiSink(LokiConfig{URL: srv.URL + "/loki/api/v1/push", Service: "x", Buffer: 1 << 16}, sdkmetric.NewMeterProvider().Meter("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	line := []byte(`{"time":"2026-12-06T05:00:00Z","level":"INFO","msg":"decision","outcome":"applied"}` + "\n")
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Write(line) }); n != 1 {
		t.Fatalf("%v allocations per line, want 1 (the copy of the line)", n)
	}
}

// A client library's callback (a NATS disconnect handler, say) may log while the process
// is shutting down, after telemetry has been shut down: the line still goes to stdout,
// and the Loki sink neither panics nor pushes it.
func TestLoki_LoggingAfterShutdownGoesToStdoutOnly(t *testing.T) {
	loki := &fakeLoki{}
	srv := httptest.NewServer(loki)
	defer srv.Close()
	var stdout bytes.Buffer // slog's JSON handler serialises its writes
	tel, err := Setup(context.Background(), Config{
		ServiceName: "order", LogWriter: &stdout,
		Loki: LokiConfig{URL: srv.URL + "/loki/api/v1/push"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tel.Logger.Info("before shutdown")

	// Loggers race with the shutdown, as callbacks on other goroutines do.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					tel.Logger.Info("racing shutdown")
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	close(stop)
	wg.Wait()
	tel.Logger.Warn("nats disconnected") // after shutdown: this used to panic

	if !strings.Contains(stdout.String(), `"msg":"nats disconnected"`) {
		t.Errorf("the line logged after shutdown is not on stdout:\n%s", stdout.String())
	}
	var before bool
	for _, s := range loki.lines() {
		for _, v := range s.Values {
			before = before || strings.Contains(v[1], `"msg":"before shutdown"`)
			if strings.Contains(v[1], `"msg":"nats disconnected"`) {
				t.Errorf("a line logged after shutdown reached Loki: %s", v[1])
			}
		}
	}
	if !before {
		t.Error("the line logged before shutdown never reached Loki")
	}
}

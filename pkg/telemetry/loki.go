package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/loki-client-go/loki"
	"github.com/grafana/loki-client-go/pkg/backoff"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// LokiConfig configures the Loki sink. Labels are the service and the level only: ids
// (trace, order, event) stay in the line, where Loki's derived fields and LogQL find them
// without exploding the number of streams.
type LokiConfig struct {
	URL     string // push endpoint, e.g. http://loki:3100/loki/api/v1/push
	Service string
	Buffer  int // lines held while Loki is slow; beyond that lines are dropped and counted
}

// lokiSink pushes log lines to Loki through loki-client-go. The client's Handle blocks
// while it retries a failing push, so the sink puts a bounded buffer in front of it: a dead
// or slow Loki costs dropped lines (counted in loudly_telemetry_log_dropped_total), never a
// blocked or crashed service. Lines written after Shutdown (a client library's callback
// logging while the process exits, say) are not pushed: they still reach the other
// handlers, stdout among them.
type lokiSink struct {
	client  *loki.Client
	dropped metric.Int64Counter
	service model.LabelValue
	streams map[string]model.LabelSet // the labels of each standard level, built once, only read
	done    chan struct{}

	mu     sync.RWMutex // held for reading to send on lines, for writing to close it
	lines  chan lokiLine
	closed bool
}

type lokiLine struct {
	labels model.LabelSet
	at     time.Time
	text   string
}

func newLokiSink(cfg LokiConfig, meter metric.Meter) (*lokiSink, error) {
	lc, err := loki.NewDefaultConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("LOKI_URL %q: %w", cfg.URL, err)
	}
	lc.BatchWait = time.Second
	lc.Timeout = 5 * time.Second
	lc.BackoffConfig = backoff.BackoffConfig{MinBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second, MaxRetries: 3}
	client, err := loki.NewWithLogger(lc, log.NewNopLogger())
	if err != nil {
		return nil, fmt.Errorf("loki client: %w", err)
	}
	dropped, err := meter.Int64Counter("loudly.telemetry.log.dropped", metric.WithUnit("{record}"),
		metric.WithDescription("Log records a sink dropped because it could not keep up (its backend is down or slow)."))
	if err != nil {
		return nil, err
	}
	dropped.Add(context.Background(), 0, lokiDropped) // from zero, as spans.go's counter
	if cfg.Buffer <= 0 {
		cfg.Buffer = 10000
	}
	s := &lokiSink{client: client, lines: make(chan lokiLine, cfg.Buffer), dropped: dropped,
		service: model.LabelValue(cfg.Service), streams: map[string]model.LabelSet{}, done: make(chan struct{})}
	// A line's labels are one of these maps, shared by every line of its level: the client
	// only reads them. A level outside the four gets a map of its own.
	for _, level := range []string{"debug", "info", "warn", "error"} {
		s.streams[level] = s.labels(level)
	}
	go s.forward()
	return s, nil
}

func (s *lokiSink) forward() {
	defer close(s.done)
	for l := range s.lines {
		_ = s.client.Handle(l.labels, l.at, l.text)
	}
}

func (s *lokiSink) labels(level string) model.LabelSet {
	return model.LabelSet{"service": s.service, "level": model.LabelValue(level)}
}

var lokiDropped = metric.WithAttributeSet(attribute.NewSet(attribute.String("sink", "loki")))

// Write receives one JSON line from the slog JSON handler that writes stdout (it writes
// each record in one call) and queues it without ever blocking; after Shutdown it does
// nothing.
func (s *lokiSink) Write(p []byte) (int, error) {
	level := levelOf(p)
	labels, ok := s.streams[level]
	if !ok {
		labels = s.labels(level)
	}
	line := lokiLine{labels: labels, at: time.Now(), text: string(bytes.TrimRight(p, "\n"))}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return len(p), nil
	}
	select {
	case s.lines <- line:
	default:
		s.dropped.Add(context.Background(), 1, lokiDropped)
	}
	return len(p), nil
}

// Shutdown sends what is queued and stops the client.
func (s *lokiSink) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.lines)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	stopped := make(chan struct{})
	go func() { s.client.Stop(); close(stopped) }()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// levelOf reads the level the JSON handler wrote near the start of the line.
func levelOf(line []byte) string {
	const key = `"level":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return "info"
	}
	rest := line[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "info"
	}
	switch string(rest[:j]) { // the standard levels without an allocation
	case "DEBUG":
		return "debug"
	case "INFO":
		return "info"
	case "WARN":
		return "warn"
	case "ERROR":
		return "error"
	}
	return strings.ToLower(string(rest[:j]))
}

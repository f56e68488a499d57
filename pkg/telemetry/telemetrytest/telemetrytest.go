// Package telemetrytest gives tests a real telemetry.Telemetry whose spans, metrics and
// log lines are captured in memory, so a test asserts what a service actually emitted.
package telemetrytest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"loudly/pkg/telemetry"
)

// Capture is a Telemetry plus what it recorded.
type Capture struct {
	*telemetry.Telemetry
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	logs   *syncBuffer
}

// New sets up telemetry for service name, capturing everything; it is shut down at
// the end of the test.
func New(t testing.TB, name string) *Capture {
	t.Helper()
	c := &Capture{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader(), logs: &syncBuffer{}}
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{
		ServiceName:    name,
		LogWriter:      c.logs,
		SpanProcessors: []sdktrace.SpanProcessor{c.spans},
		MetricReaders:  []sdkmetric.Reader{c.reader},
	})
	if err != nil {
		t.Fatalf("telemetry: %v", err)
	}
	c.Telemetry = tel
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return c
}

// Spans returns the ended spans so far.
func (c *Capture) Spans() []sdktrace.ReadOnlySpan { return c.spans.Ended() }

// Logs returns every JSON log line so far, decoded.
func (c *Capture) Logs() []map[string]any {
	var out []map[string]any
	for _, line := range c.LogLines() {
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// LogLines returns every log line written so far, as written (a key repeated in a line
// stays visible here, where Logs keeps one).
func (c *Capture) LogLines() []string {
	var out []string
	for _, line := range strings.Split(c.logs.String(), "\n") {
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// Decisions returns the log lines of decisions, optionally only those whose attributes
// include every key/value in match.
func (c *Capture) Decisions(match map[string]string) []map[string]any {
	var out []map[string]any
	for _, l := range c.Logs() {
		if l["msg"] != "decision" {
			continue
		}
		ok := true
		for k, v := range match {
			if l[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// Collect reads the current metrics.
func (c *Capture) Collect(t testing.TB) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := c.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect metrics: %v", err)
	}
	return rm
}

// CounterPoint is one data point of an integer counter.
type CounterPoint struct {
	Attrs     map[string]string
	Value     int64
	Exemplars []metricdata.Exemplar[int64]
}

// Counter returns the points of the int64 sum named name whose attributes include match.
func (c *Capture) Counter(t testing.TB, name string, match map[string]string) []CounterPoint {
	t.Helper()
	var out []CounterPoint
	for _, sm := range c.Collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				t.Fatalf("metric %s is %T, not an int64 sum", name, m.Data)
			}
			for _, dp := range sum.DataPoints {
				attrs := attrMap(dp.Attributes)
				if matches(attrs, match) {
					out = append(out, CounterPoint{Attrs: attrs, Value: dp.Value, Exemplars: dp.Exemplars})
				}
			}
		}
	}
	return out
}

// CounterValue sums the matching points of an int64 counter.
func (c *Capture) CounterValue(t testing.TB, name string, match map[string]string) int64 {
	t.Helper()
	var n int64
	for _, p := range c.Counter(t, name, match) {
		n += p.Value
	}
	return n
}

func attrMap(s attribute.Set) map[string]string {
	m := map[string]string{}
	for _, kv := range s.ToSlice() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func matches(attrs, match map[string]string) bool {
	for k, v := range match {
		if attrs[k] != v {
			return false
		}
	}
	return true
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

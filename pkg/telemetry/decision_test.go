package telemetry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/telemetry"
	"loudly/pkg/telemetry/telemetrytest"
)

const (
	testEventID = "0b6e8f0e-4c1b-4bde-9f3a-3f4e54a0c001"
	testKey     = "pay-0001"
)

// TestRecorder_Record is the contract of the outcome table in docs/design.md: whatever the outcome,
// recording it leaves the same three traces — a span event, a counter increment with an
// exemplar pointing at the trace, and one log line carrying the trace and the ids.
func TestRecorder_Record(t *testing.T) {
	wantFailed := map[telemetry.Outcome]bool{telemetry.Invalid: true, telemetry.DeadLettered: true}
	wantLevel := map[telemetry.Outcome]string{
		telemetry.Applied: "INFO", telemetry.Duplicate: "INFO",
		telemetry.Rejected: "WARN", telemetry.Retry: "WARN",
		telemetry.Invalid: "ERROR", telemetry.DeadLettered: "ERROR",
	}
	tests := []struct {
		outcome    telemetry.Outcome
		reason     string
		settlement telemetry.Settlement
		err        error
	}{
		{telemetry.Applied, "reserved", "ack", nil},
		{telemetry.Rejected, "insufficient_stock", "ack", nil},
		{telemetry.Duplicate, "already_applied", "ack", nil},
		{telemetry.Invalid, "bad_field", "term", errors.New("lines[0].quantity 0: want 1..1000")},
		{telemetry.Retry, "db_unavailable", "nak", errors.New("connection refused")},
		{telemetry.DeadLettered, "db_unavailable", "term", errors.New("retries exhausted")},
	}
	// The table must cover the whole closed set: an outcome added to the set without a
	// row here fails this test instead of going untested.
	covered := map[telemetry.Outcome]bool{}
	for _, tt := range tests {
		covered[tt.outcome] = true
	}
	for _, o := range telemetry.Outcomes {
		if !covered[o] {
			t.Errorf("outcome %q has no row in this table", o)
		}
	}

	for _, tt := range tests {
		t.Run(string(tt.outcome)+" is recorded on the span, the counter and the log", func(t *testing.T) {
			c := telemetrytest.New(t, "decision-test")
			ctx, span := c.Tracer().Start(context.Background(), "process orders.placed")
			c.Telemetry.Decisions.Record(ctx, telemetry.Decision{
				Stage: telemetry.StageConsume, Outcome: tt.outcome, Reason: tt.reason,
				EventType: "order.placed", EventID: testEventID, Key: testKey,
				Settlement: tt.settlement, Err: tt.err,
			})
			span.End()
			sc := span.SpanContext()

			// (a) the span event, and the span's status.
			s := endedSpan(t, c, sc)
			ev := decisionEvent(t, s)
			wantAttrs := map[string]string{
				"loudly.outcome": string(tt.outcome), "loudly.reason": tt.reason, "loudly.stage": "consume",
				"loudly.event_type": "order.placed", "loudly.event_id": testEventID, "loudly.key": testKey,
				"loudly.settlement": string(tt.settlement),
			}
			if tt.err != nil {
				wantAttrs["loudly.error"] = tt.err.Error()
			}
			assertAttrs(t, "span event", ev, wantAttrs)
			if got, want := s.Status().Code == codes.Error, wantFailed[tt.outcome]; got != want {
				t.Errorf("span status = %v (%q), want error: %v", s.Status().Code, s.Status().Description, want)
			}

			// (b) the counter, with an exemplar that leads to this trace.
			assertCounted(t, c, map[string]string{
				"stage": "consume", "outcome": string(tt.outcome), "reason": tt.reason, "event_type": "order.placed",
			}, sc)

			// (c) the log line.
			line := oneDecisionLine(t, c)
			assertFields(t, line, map[string]string{
				"outcome": string(tt.outcome), "reason": tt.reason, "stage": "consume", "settlement": string(tt.settlement),
				"event_type": "order.placed", "event_id": testEventID, "key": testKey,
				"trace_id": sc.TraceID().String(), "span_id": sc.SpanID().String(),
				"level": wantLevel[tt.outcome], "service": "decision-test",
			})
			if tt.err != nil && line["error"] != tt.err.Error() {
				t.Errorf("log error = %v, want %q", line["error"], tt.err.Error())
			}
		})
	}
}

func TestRecorder_Record_OutcomeOutsideTheClosedSet(t *testing.T) {
	c := telemetrytest.New(t, "decision-test")
	ctx, span := c.Tracer().Start(context.Background(), "handler")
	c.Telemetry.Decisions.Record(ctx, telemetry.Decision{
		Stage: telemetry.StageHTTP, Outcome: telemetry.Outcome("ok"), Reason: "created", EventType: "order.placed",
	})
	span.End()
	sc := span.SpanContext()

	t.Run("is recorded as invalid/unknown_outcome, never dropped", func(t *testing.T) {
		s := endedSpan(t, c, sc)
		assertAttrs(t, "span event", decisionEvent(t, s), map[string]string{
			"loudly.outcome": "invalid", "loudly.reason": "unknown_outcome",
		})
		if s.Status().Code != codes.Error {
			t.Errorf("span status = %v, want error", s.Status().Code)
		}
		assertCounted(t, c, map[string]string{"stage": "http", "outcome": "invalid", "reason": "unknown_outcome"}, sc)
		line := oneDecisionLine(t, c)
		assertFields(t, line, map[string]string{"outcome": "invalid", "reason": "unknown_outcome", "trace_id": sc.TraceID().String()})
		if msg, _ := line["error"].(string); !strings.Contains(msg, `"ok"`) {
			t.Errorf("log error = %q, want it to name the bad outcome \"ok\"", msg)
		}
	})

	t.Run("the bad value never becomes a label", func(t *testing.T) {
		if n := c.CounterValue(t, "loudly.decisions", map[string]string{"outcome": "ok"}); n != 0 {
			t.Errorf("loudly.decisions{outcome=ok} = %d, want no such series", n)
		}
	})
}

func TestRecorder_Record_WithoutASpan(t *testing.T) {
	c := telemetrytest.New(t, "decision-test")
	c.Telemetry.Decisions.Record(context.Background(), telemetry.Decision{
		Stage: telemetry.StageReconcile, Outcome: telemetry.Retry, Reason: "query_failed", Key: testKey,
	})

	spans := c.Spans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans, want the recorder's own decision span", len(spans))
	}
	s := spans[0]
	t.Run("starts its own decision span", func(t *testing.T) {
		if want := "decision reconcile"; s.Name() != want {
			t.Errorf("span name = %q, want %q", s.Name(), want)
		}
		if s.Parent().IsValid() {
			t.Errorf("own span has parent %s, want a root span", s.Parent().SpanID())
		}
		assertAttrs(t, "span event", decisionEvent(t, s), map[string]string{
			"loudly.outcome": "retry", "loudly.reason": "query_failed", "loudly.key": testKey,
		})
	})
	t.Run("the counter's exemplar and the log line point at that span", func(t *testing.T) {
		assertCounted(t, c, map[string]string{"stage": "reconcile", "outcome": "retry", "reason": "query_failed"}, s.SpanContext())
		assertFields(t, oneDecisionLine(t, c), map[string]string{
			"trace_id": s.SpanContext().TraceID().String(), "span_id": s.SpanContext().SpanID().String(),
			"key": testKey,
		})
	})
}

// TestMetricsHandler_ExemplarInOpenMetrics is what Prometheus with exemplar storage sees:
// the decision counter, and the trace id of the decision beside the sample.
func TestMetricsHandler_ExemplarInOpenMetrics(t *testing.T) {
	c := telemetrytest.New(t, "decision-test")
	ctx, span := c.Tracer().Start(context.Background(), "process orders.placed")
	c.Telemetry.Decisions.Record(ctx, telemetry.Decision{
		Stage: telemetry.StageConsume, Outcome: telemetry.Rejected, Reason: "insufficient_stock",
		EventType: "order.placed", Settlement: "ack",
	})
	span.End()

	srv := httptest.NewServer(c.MetricsHandler())
	t.Cleanup(srv.Close)
	scrape := func(t *testing.T, accept string) (string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %s\n%s", res.Status, body)
		}
		return res.Header.Get("Content-Type"), string(body)
	}
	sample := regexp.MustCompile(`(?m)^loudly_decisions_total\{([^}]*)\} 1(?:\.0)?(.*)$`)

	t.Run("OpenMetrics carries the exemplar with the trace id", func(t *testing.T) {
		ctype, body := scrape(t, "application/openmetrics-text; version=1.0.0; charset=utf-8")
		if !strings.HasPrefix(ctype, "application/openmetrics-text") {
			t.Errorf("Content-Type = %q, want OpenMetrics", ctype)
		}
		m := sample.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no loudly_decisions_total sample of 1 in:\n%s", grepLines(body, "loudly_decisions"))
		}
		for _, label := range []string{`stage="consume"`, `outcome="rejected"`, `reason="insufficient_stock"`, `event_type="order.placed"`} {
			if !strings.Contains(m[1], label) {
				t.Errorf("sample labels {%s} lack %s", m[1], label)
			}
		}
		wantExemplar := `trace_id="` + span.SpanContext().TraceID().String() + `"`
		if !strings.HasPrefix(m[2], " # {") || !strings.Contains(m[2], wantExemplar) {
			t.Errorf("sample %q has no exemplar with %s", m[0], wantExemplar)
		}
	})

	t.Run("the classic text format still works, without exemplars", func(t *testing.T) {
		_, body := scrape(t, "")
		m := sample.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no loudly_decisions_total sample in:\n%s", grepLines(body, "loudly_decisions"))
		}
		if strings.Contains(m[2], "#") {
			t.Errorf("text format sample %q carries an exemplar", m[0])
		}
	})
}

// BenchmarkRecordDecision measures the cost every consumed message pays for being
// recorded: with the message's span already open, and without one (the recorder's own span).
func BenchmarkRecordDecision(b *testing.B) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "bench", LogWriter: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	d := telemetry.Decision{
		Stage: telemetry.StageConsume, Outcome: telemetry.Applied, Reason: "reserved",
		EventType: "order.placed", EventID: testEventID, Key: testKey, Settlement: "ack",
	}
	tracer := tel.Tracer()

	b.Run("on the message span", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, span := tracer.Start(context.Background(), "process orders.placed")
			tel.Decisions.Record(ctx, d)
			span.End()
		}
	})
	b.Run("own span", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tel.Decisions.Record(context.Background(), d)
		}
	})
}

// endedSpan returns the ended span with sc's ids.
func endedSpan(t *testing.T, c *telemetrytest.Capture, sc trace.SpanContext) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range c.Spans() {
		if s.SpanContext().SpanID() == sc.SpanID() {
			return s
		}
	}
	t.Fatalf("span %s was not recorded", sc.SpanID())
	return nil
}

// decisionEvent returns the span's one "decision" event's attributes.
func decisionEvent(t *testing.T, s sdktrace.ReadOnlySpan) map[string]string {
	t.Helper()
	var found []map[string]string
	for _, e := range s.Events() {
		if e.Name == "decision" {
			found = append(found, attrStrings(e.Attributes))
		}
	}
	if len(found) != 1 {
		t.Fatalf("span %q has %d decision events, want 1", s.Name(), len(found))
	}
	return found[0]
}

func attrStrings(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func assertAttrs(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s %s = %q, want %q", what, k, got[k], v)
		}
	}
}

// assertCounted checks that loudly.decisions has exactly one point with labels, of value
// 1, whose exemplar names sc's trace and span.
func assertCounted(t *testing.T, c *telemetrytest.Capture, labels map[string]string, sc trace.SpanContext) {
	t.Helper()
	points := c.Counter(t, "loudly.decisions", labels)
	if len(points) != 1 {
		t.Fatalf("loudly.decisions%v: %d points, want 1", labels, len(points))
	}
	p := points[0]
	if p.Value != 1 {
		t.Errorf("loudly.decisions%v = %d, want 1", labels, p.Value)
	}
	if len(p.Attrs) != 4 {
		t.Errorf("loudly.decisions labels = %v, want exactly stage, outcome, reason, event_type", p.Attrs)
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	for _, ex := range p.Exemplars {
		if bytes.Equal(ex.TraceID, tid[:]) && bytes.Equal(ex.SpanID, sid[:]) {
			return
		}
	}
	t.Errorf("loudly.decisions%v has no exemplar for trace %s span %s (exemplars: %+v)", labels, tid, sid, p.Exemplars)
}

func oneDecisionLine(t *testing.T, c *telemetrytest.Capture) map[string]any {
	t.Helper()
	lines := c.Decisions(nil)
	if len(lines) != 1 {
		t.Fatalf("got %d decision log lines, want 1: %v", len(lines), lines)
	}
	return lines[0]
}

func assertFields(t *testing.T, line map[string]any, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, _ := line[k].(string); got != v {
			t.Errorf("log %s = %v, want %q", k, line[k], v)
		}
	}
}

func grepLines(body, substr string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

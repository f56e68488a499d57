package telemetry

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"

	"go.opentelemetry.io/contrib/bridges/otelslog"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/trace"
)

// traceHandler stamps every record with the trace_id and span_id of the span in its
// context, then fans it out to every sink (stdout JSON, OTLP, Loki, test capture).
// One record reaches every sink with the same attributes, so a line found in Loki and the
// same line on stdout can always be matched by trace id.
type traceHandler struct {
	sinks []slog.Handler
}

func newTraceHandler(sinks ...slog.Handler) *traceHandler {
	return &traceHandler{sinks: sinks}
}

func (h *traceHandler) Enabled(ctx context.Context, l slog.Level) bool {
	for _, s := range h.sinks {
		if s.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (h *traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		ids := traceIDs(sc)
		r.AddAttrs(slog.String("trace_id", ids[:32]), slog.String("span_id", ids[32:]))
	}
	var errs []error
	for _, s := range h.sinks {
		if s.Enabled(ctx, r.Level) {
			if err := s.Handle(ctx, r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// traceIDs is sc's trace id and span id in lower-case hex, one after the other in one
// string: every log line carries both, and one string is one allocation, not two.
func traceIDs(sc trace.SpanContext) string {
	tid, sid := sc.TraceID(), sc.SpanID()
	var b [48]byte
	hex.Encode(b[:32], tid[:])
	hex.Encode(b[32:], sid[:])
	return string(b[:])
}

func (h *traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	next := make([]slog.Handler, len(h.sinks))
	for i, s := range h.sinks {
		next[i] = s.WithAttrs(attrs)
	}
	return &traceHandler{sinks: next}
}

func (h *traceHandler) WithGroup(name string) slog.Handler {
	next := make([]slog.Handler, len(h.sinks))
	for i, s := range h.sinks {
		next[i] = s.WithGroup(name)
	}
	return &traceHandler{sinks: next}
}

// levelHandler filters a sink that has no level option of its own (the OTLP bridge).
type levelHandler struct {
	slog.Handler
	min slog.Level
}

func (h levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}
func (h levelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return levelHandler{h.Handler.WithAttrs(a), h.min}
}
func (h levelHandler) WithGroup(n string) slog.Handler {
	return levelHandler{h.Handler.WithGroup(n), h.min}
}

func newOTLPHandler(name string, lp *sdklog.LoggerProvider, min slog.Level) slog.Handler {
	return levelHandler{otelslog.NewHandler(name, otelslog.WithLoggerProvider(lp)), min}
}

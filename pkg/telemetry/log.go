package telemetry

import (
	"context"
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
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
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

package telemetry

import (
	"context"
	"errors"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// spanExport is the span processor for an exporter: the SDK's batch span processor,
// with a bound of its own in front that counts every span it cannot export.
//
// The batch span processor drops a span when its queue is full, and says so only in a
// debug log of the SDK's global logger: under a burst a service would lose spans with
// every dashboard unaware, and an exemplar would point at a trace that was never stored.
// Here a span is admitted only while fewer than limit spans wait (queued, batched or
// being exported); the batcher's queue holds limit, so it is never the one that drops.
// A span turned away is counted in loudly.telemetry.spans.dropped{reason="queue_full"},
// a batch the exporter failed to deliver in {reason="export_failed"}, the spans a collector
// took the request of but refused (an OTLP partial success) in {reason="rejected"}: every
// sampled span ends exported or counted.
type spanExport struct {
	next     sdktrace.SpanProcessor
	limit    int64
	inflight atomic.Int64
	dropped  metric.Int64Counter
}

var (
	queueFull    = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "queue_full")))
	exportFailed = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "export_failed")))
	rejected     = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", "rejected")))
)

// newSpanExport builds the processor for exp; opts are the batcher's own (tests shorten
// its delays). limit <= 0 means DefaultSpanQueue.
func newSpanExport(exp sdktrace.SpanExporter, limit int, meter metric.Meter, opts ...sdktrace.BatchSpanProcessorOption) (*spanExport, error) {
	if limit <= 0 {
		limit = DefaultSpanQueue
	}
	dropped, err := meter.Int64Counter("loudly.telemetry.spans.dropped", metric.WithUnit("{span}"),
		metric.WithDescription("Spans ended but not exported: too many were waiting for export (queue_full), the exporter failed to deliver them (export_failed), or the collector refused them (rejected)."))
	if err != nil {
		return nil, err
	}
	// Every reason starts at zero, so the first span dropped is an increase a rule can see
	// (a counter that first appears at 1 has no earlier sample to rise from).
	for _, reason := range []metric.AddOption{queueFull, exportFailed, rejected} {
		dropped.Add(context.Background(), 0, reason)
	}
	s := &spanExport{limit: int64(limit), dropped: dropped}
	opts = append(opts, sdktrace.WithMaxQueueSize(limit)) // last: the bound is ours
	s.next = sdktrace.NewBatchSpanProcessor(countingExporter{exp, s}, opts...)
	return s, nil
}

func (s *spanExport) OnStart(ctx context.Context, span sdktrace.ReadWriteSpan) {
	s.next.OnStart(ctx, span)
}

func (s *spanExport) OnEnd(span sdktrace.ReadOnlySpan) {
	if !span.SpanContext().IsSampled() {
		return // the batcher ignores it too
	}
	if s.inflight.Add(1) > s.limit {
		s.inflight.Add(-1)
		s.dropped.Add(context.Background(), 1, queueFull)
		return
	}
	s.next.OnEnd(span)
}

func (s *spanExport) Shutdown(ctx context.Context) error   { return s.next.Shutdown(ctx) }
func (s *spanExport) ForceFlush(ctx context.Context) error { return s.next.ForceFlush(ctx) }

// countingExporter releases a batch's spans from the bound once the exporter is done with
// them, and counts them as dropped when it failed.
type countingExporter struct {
	sdktrace.SpanExporter
	s *spanExport
}

func (e countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	var rej *rejectedError
	switch {
	case errors.As(err, &rej):
		e.s.dropped.Add(context.Background(), min(rej.n, int64(len(spans))), rejected)
	case err != nil:
		e.s.dropped.Add(context.Background(), int64(len(spans)), exportFailed)
	}
	e.s.inflight.Add(-int64(len(spans)))
	return err
}

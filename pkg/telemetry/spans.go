package telemetry

import (
	"context"
	"reflect"
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
//
// What is counted is what the SDK's OTLP span exporter reports: its ExportSpans returns an
// error after its own retries (HTTP 429/502/503/504, gRPC's retryable codes, until the
// export's timeout), and at v1.47 it returns a partial success as an error too, on both
// protocols (partialSuccess below). Loudly keeps no global OpenTelemetry state, so what
// the SDK reports only to the global error handler — the batch span processor's own
// complaints, and any failure of the OTLP metric and log exports — goes to the SDK's
// default handler (stderr) and is not counted here.
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
	if err != nil {
		if n, ok := partialSuccess(err); ok {
			e.s.dropped.Add(context.Background(), min(n, int64(len(spans))), rejected)
		} else {
			e.s.dropped.Add(context.Background(), int64(len(spans)), exportFailed)
		}
	}
	e.s.inflight.Add(-int64(len(spans)))
	return err
}

// partialSuccess reports whether err is nothing but OTLP partial successes, and how many
// spans they refused. The SDK's exporters wrap the collector's answer in a PartialSuccess
// error of an internal package (exporters/otlp/otlptrace/*/internal), with the fields
// RejectedItems and RejectedKind, and join it with any failure of the same export; it
// can be matched only by its shape. TestSpanExportCountsWhatTheCollectorRejects drives
// both SDK exporters into a real partial success, so an SDK upgrade that changes the shape
// fails that test instead of counting refused spans as export_failed unnoticed.
func partialSuccess(err error) (rejected int64, ok bool) {
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, err := range errs {
			n, ok := partialSuccess(err)
			if !ok {
				return 0, false
			}
			rejected += n
		}
		return rejected, len(errs) > 0
	case interface{ Unwrap() error }:
		return partialSuccess(e.Unwrap())
	}
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Struct || v.Type().Name() != "PartialSuccess" {
		return 0, false
	}
	n, kind := v.FieldByName("RejectedItems"), v.FieldByName("RejectedKind")
	if n.Kind() != reflect.Int64 || kind.Kind() != reflect.String || kind.String() != "spans" {
		return 0, false
	}
	return n.Int(), true
}

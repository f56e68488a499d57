package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Outcome is how a decision ended. The set is closed: a value outside it is a bug, and
// Record reports it as one instead of recording it.
type Outcome string

// The outcomes of docs/design.md. Every message a consumer receives ends in exactly one.
const (
	Applied      Outcome = "applied"       // the business effect was committed; ack
	Rejected     Outcome = "rejected"      // a valid request the business refuses; ack
	Duplicate    Outcome = "duplicate"     // already applied; ack
	Invalid      Outcome = "invalid"       // can never be processed; term + dead letter
	Retry        Outcome = "retry"         // transient failure; nak with delay
	DeadLettered Outcome = "dead_lettered" // retries exhausted; term + dead letter
)

// Outcomes lists the closed set, for tests and dashboards that must cover all of it.
var Outcomes = []Outcome{Applied, Rejected, Duplicate, Invalid, Retry, DeadLettered}

// Valid reports whether o is one of the closed set.
func (o Outcome) Valid() bool {
	switch o {
	case Applied, Rejected, Duplicate, Invalid, Retry, DeadLettered:
		return true
	}
	return false
}

// Failed reports whether the outcome marks the span as an error.
func (o Outcome) Failed() bool { return o == Invalid || o == DeadLettered }

// Stages name where a decision was taken; they are a metric label, so the set stays small.
const (
	StageConsume   = "consume"   // a message settlement by the consumer runner
	StageBatch     = "batch"     // a batch (a consumer's messages, a group of requests) that failed as a whole and was decided again one by one
	StageHTTP      = "http"      // an API request decision
	StageOutbox    = "outbox"    // the outbox relay
	StageReconcile = "reconcile" // a reconciler finding
)

// Settlement is what a consumer told the broker about a message.
type Settlement string

// The settlements of the outcome table in docs/design.md.
const (
	Ack  Settlement = "ack"  // applied, rejected, duplicate
	Nak  Settlement = "nak"  // retry: redelivered after a backoff delay
	Term Settlement = "term" // invalid, dead-lettered: never redelivered (its dead letter is stored first)
)

// Decision is one branch taken. Stage, Outcome and Reason are metric labels and must come
// from small fixed sets (never ids); EventID and Key go to the span event and log line.
type Decision struct {
	Stage     string
	Outcome   Outcome
	Reason    string
	EventType string
	EventID   string
	// Key is the entity the decision is about (the event's key), never a label. It is
	// logged as KeyName ("loudly.<KeyName>" on the span), DefaultKeyName when empty: a
	// service names it for its domain (a payment reference, an order id), so its logs read
	// in its terms.
	Key     string
	KeyName string
	// Settlement is what the broker was told; empty when no message is settled.
	// SettleErr is set when the broker did not take it: the message will come back, and
	// the record says "<settlement>_failed" instead of claiming it was settled.
	Settlement Settlement
	SettleErr  error
	Err        error
	Attrs      []slog.Attr // extra log/span detail, never labels
}

// settlement is the settlement as recorded.
func (d Decision) settlement() string {
	if d.SettleErr != nil {
		return string(d.Settlement) + "_failed"
	}
	return string(d.Settlement)
}

// Recorder records decisions: one span event, one counter increment (with an exemplar
// when the context carries a sampled span), one log line. It is the only place that does,
// so every decision in every service looks the same.
//
// Record runs for every message, so what it can compute once it keeps: the counter's
// attribute set for each combination of labels and the span attribute key for each key
// name. Both come from small fixed sets (labels must; key names are a service's
// constants), and each cache stops growing at maxCached entries, so a caller that breaks
// that rule costs allocations, never unbounded memory.
type Recorder struct {
	tracer  trace.Tracer
	counter metric.Int64Counter
	logger  *slog.Logger

	labelSets cache // labels → []metric.AddOption
	keyAttrs  cache // key name → attribute.Key "loudly.<name>"
}

// labels are the decision counter's labels.
type labels struct{ stage, outcome, reason, eventType string }

// maxCached bounds each of the recorder's caches: beyond the SDK's own limit of distinct
// attribute sets per instrument (2000 by default), more would not help.
const maxCached = 1024

// cache is a concurrent map that stops taking entries at maxCached.
type cache struct {
	m sync.Map
	n atomic.Int64
}

// add stores v under key unless the cache is full.
func (c *cache) add(key, v any) {
	if c.n.Load() < maxCached {
		if _, loaded := c.m.LoadOrStore(key, v); !loaded {
			c.n.Add(1)
		}
	}
}

// counterOptions returns the counter's options for d's labels.
func (r *Recorder) counterOptions(d Decision) []metric.AddOption {
	l := labels{d.Stage, string(d.Outcome), d.Reason, d.EventType}
	if v, ok := r.labelSets.m.Load(l); ok {
		return v.([]metric.AddOption)
	}
	opts := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(
		attribute.String("stage", l.stage),
		attribute.String("outcome", l.outcome),
		attribute.String("reason", l.reason),
		attribute.String("event_type", l.eventType),
	))}
	r.labelSets.add(l, opts)
	return opts
}

// keyAttr is the span attribute key of an entity key named name: "loudly.<name>".
func (r *Recorder) keyAttr(name string) attribute.Key {
	if v, ok := r.keyAttrs.m.Load(name); ok {
		return v.(attribute.Key)
	}
	k := attribute.Key("loudly." + name)
	r.keyAttrs.add(name, k)
	return k
}

// DefaultKeyName is the log field (and, prefixed "loudly.", the span attribute) under
// which a decision carries its entity key unless it names another.
const DefaultKeyName = "key"

// NewRecorder builds a recorder on the given providers' tracer, meter and logger.
func NewRecorder(tracer trace.Tracer, meter metric.Meter, logger *slog.Logger) (*Recorder, error) {
	c, err := meter.Int64Counter("loudly.decisions",
		metric.WithUnit("{decision}"),
		metric.WithDescription("Decisions taken, by stage, outcome, reason and event type. Every consumed message is exactly one consume decision."))
	if err != nil {
		return nil, fmt.Errorf("telemetry: decisions counter: %w", err)
	}
	return &Recorder{tracer: tracer, counter: c, logger: logger}, nil
}

// Record records d on the span in ctx. When ctx has no recording span, Record starts a
// short one named "decision <stage>" so the decision is still in a trace.
func (r *Recorder) Record(ctx context.Context, d Decision) {
	if !d.Outcome.Valid() {
		// A caller passed an outcome outside the closed set: record it loudly as what it
		// is, a programming error, rather than dropping or inventing a category.
		d.Err = fmt.Errorf("outcome %q is not in the closed set", d.Outcome)
		d.Reason = "unknown_outcome"
		d.Outcome = Invalid
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		ctx, span = r.tracer.Start(ctx, ownSpanName(d.Stage))
		defer span.End()
	}

	spanAttrs := make([]attribute.KeyValue, 0, 8)
	spanAttrs = append(spanAttrs,
		attribute.String("loudly.outcome", string(d.Outcome)),
		attribute.String("loudly.reason", d.Reason),
		attribute.String("loudly.stage", d.Stage),
	)
	if d.EventType != "" {
		spanAttrs = append(spanAttrs, attribute.String("loudly.event_type", d.EventType))
	}
	if d.EventID != "" {
		spanAttrs = append(spanAttrs, attribute.String("loudly.event_id", d.EventID))
	}
	keyName := d.KeyName
	if keyName == "" {
		keyName = DefaultKeyName
	}
	if d.Key != "" {
		spanAttrs = append(spanAttrs, r.keyAttr(keyName).String(d.Key))
	}
	if d.Settlement != "" {
		spanAttrs = append(spanAttrs, attribute.String("loudly.settlement", d.settlement()))
	}
	if d.Err != nil {
		spanAttrs = append(spanAttrs, attribute.String("loudly.error", d.Err.Error()))
	}
	span.AddEvent("decision", trace.WithAttributes(spanAttrs...))
	if d.Outcome.Failed() {
		span.SetStatus(codes.Error, string(d.Outcome)+": "+d.Reason)
	}

	r.counter.Add(ctx, 1, r.counterOptions(d)...)

	// The log attributes live on the stack unless the decision brings many of its own:
	// the logger copies them into its record.
	var buf [12]slog.Attr
	attrs := append(buf[:0],
		slog.String("stage", d.Stage),
		slog.String("outcome", string(d.Outcome)),
		slog.String("reason", d.Reason),
		slog.String("event_type", d.EventType),
		slog.String("event_id", d.EventID),
		slog.String(keyName, d.Key),
	)
	if d.Settlement != "" {
		attrs = append(attrs, slog.String("settlement", d.settlement()))
	}
	if d.SettleErr != nil {
		attrs = append(attrs, slog.String("settle_error", d.SettleErr.Error()))
	}
	if d.Err != nil {
		attrs = append(attrs, slog.String("error", d.Err.Error()))
	}
	attrs = append(attrs, d.Attrs...)
	r.logger.LogAttrs(ctx, levelFor(d.Outcome), "decision", attrs...)
}

// ownSpanName is the name of the span Record starts for a decision taken outside one:
// "decision <stage>", a constant for the stages of this package.
func ownSpanName(stage string) string {
	switch stage {
	case StageConsume:
		return "decision " + StageConsume
	case StageBatch:
		return "decision " + StageBatch
	case StageHTTP:
		return "decision " + StageHTTP
	case StageOutbox:
		return "decision " + StageOutbox
	case StageReconcile:
		return "decision " + StageReconcile
	}
	return "decision " + stage
}

func levelFor(o Outcome) slog.Level {
	switch o {
	case Applied, Duplicate:
		return slog.LevelInfo
	case Rejected, Retry:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

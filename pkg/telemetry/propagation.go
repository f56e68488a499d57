package telemetry

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier adapts NATS message headers to the OpenTelemetry propagators, so the W3C
// trace context travels with every event.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value for key. NATS headers are case-sensitive, and propagators
// write lower-case keys ("traceparent"), so lookups use the key as written.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key.
func (c HeaderCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's trace context into h.
func (t *Telemetry) Inject(ctx context.Context, h nats.Header) {
	t.Propagator.Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx carrying the trace context found in h.
func (t *Telemetry) Extract(ctx context.Context, h nats.Header) context.Context {
	return t.Propagator.Extract(ctx, HeaderCarrier(h))
}

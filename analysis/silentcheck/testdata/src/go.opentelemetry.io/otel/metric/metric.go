// Package metric is a stub of go.opentelemetry.io/otel/metric.
package metric

import "context"

type AddOption interface{}

type Int64Counter interface {
	Add(ctx context.Context, incr int64, options ...AddOption)
}

type Float64Histogram interface {
	Record(ctx context.Context, v float64, options ...AddOption)
}

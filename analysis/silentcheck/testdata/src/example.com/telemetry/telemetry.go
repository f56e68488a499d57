// Package telemetry is a stub of Loudly's decision recorder.
package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/metric"
)

type Decision struct {
	Stage, Outcome, Reason string
	Err                    error
}

type Recorder struct{ decisions metric.Int64Counter }

// Record is the decision helper: span event, counter, log line. It is known to record
// by what it does (a fact), not by its name.
func (r *Recorder) Record(ctx context.Context, d Decision) { // want Record:"records"
	r.decisions.Add(ctx, 1)
}

type Telemetry struct {
	Decisions *Recorder
	Logger    *slog.Logger
}

// Package telemetry is a stub of Loudly's decision recorder.
package telemetry

import (
	"context"
	"log/slog"
)

type Decision struct {
	Stage, Outcome, Reason string
	Err                    error
}

type Recorder struct{}

// Record is the decision helper: span event, counter, log line.
func (r *Recorder) Record(ctx context.Context, d Decision) {}

type Telemetry struct {
	Decisions *Recorder
	Logger    *slog.Logger
}

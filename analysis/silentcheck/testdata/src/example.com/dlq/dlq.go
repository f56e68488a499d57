// Package dlq holds helpers used from other packages: silentcheck learns which of them
// record (an analysis fact) so that calling one from a branch counts as recording.
package dlq

import (
	"context"
	"log/slog"

	"example.com/consumer"
	"example.com/telemetry"
)

// Publish stores a dead letter; it records nothing by itself.
func Publish(ctx context.Context, m *consumer.Message, reason string) error { return nil }

// Reject records the decision and dead-letters the message.
func Reject(ctx context.Context, rec *telemetry.Recorder, m *consumer.Message, reason string) error { // want Reject:"records" Reject:"explains its empty answers or failures"
	rec.Record(ctx, telemetry.Decision{Stage: "consume", Outcome: "invalid", Reason: reason})
	return Publish(ctx, m, reason)
}

// Dropper logs through a logger it was given.
type Dropper struct{ Log *slog.Logger }

// Drop records through a helper of its own: facts follow calls.
func (d *Dropper) Drop(ctx context.Context, reason string) { d.warn(reason) } // want Drop:"records"

func (d *Dropper) warn(reason string) { d.Log.Warn("dropped", "reason", reason) } // want warn:"records"

package consumer

import (
	"loudly/pkg/telemetry"
)

// Result is what a handler returns for a message: an outcome from the closed set
// (telemetry.Outcome) with its reason, built only by the functions below. Handlers never
// ack, nak or log a decision; they return a Result and the runner settles and records it.
// The zero Result is not a decision: a handler that returns it has a missing branch, and
// the runner dead-letters the message with reason "no_outcome".
type Result struct {
	outcome telemetry.Outcome
	reason  string
	err     error
	key     string
}

// Applied: the business effect was committed. Ack.
func Applied(reason string) Result { return Result{outcome: telemetry.Applied, reason: reason} }

// Rejected: a valid request the business refuses (its result event was written). Ack.
func Rejected(reason string) Result { return Result{outcome: telemetry.Rejected, reason: reason} }

// Duplicate: this event was applied before. Ack.
func Duplicate(reason string) Result { return Result{outcome: telemetry.Duplicate, reason: reason} }

// Invalid: the message can never be processed. Dead letter, then term.
func Invalid(reason string, err error) Result {
	return Result{outcome: telemetry.Invalid, reason: reason, err: err}
}

// Retry: a transient failure. Nak with a backoff delay; dead letter once the deliveries
// are exhausted.
func Retry(reason string, err error) Result {
	return Result{outcome: telemetry.Retry, reason: reason, err: err}
}

// WithKey names the entity the result is about when the runner could not read it from the
// message's envelope (raw-payload consumers, such as a dead-letter watcher).
func (r Result) WithKey(key string) Result { r.key = key; return r }

// Outcome is the result's outcome in the closed set.
func (r Result) Outcome() telemetry.Outcome { return r.outcome }

// Reason is the result's metric-safe reason.
func (r Result) Reason() string { return r.reason }

// Err is the error behind an invalid or retry result.
func (r Result) Err() error { return r.err }

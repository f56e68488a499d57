package consumer

import (
	"loudly/pkg/telemetry"
)

// Outcome is what a handler returns: one of the closed set, built only by the functions
// below. Handlers never ack, nak or log a decision; they return an Outcome and the runner
// settles and records it. The zero Outcome is not a decision: a handler that returns it
// has a missing branch, and the runner dead-letters the message with reason "no_outcome".
type Outcome struct {
	kind    telemetry.Outcome
	reason  string
	err     error
	orderID string
}

// Applied: the business effect was committed. Ack.
func Applied(reason string) Outcome { return Outcome{kind: telemetry.Applied, reason: reason} }

// Rejected: a valid request the business refuses (its result event was written). Ack.
func Rejected(reason string) Outcome { return Outcome{kind: telemetry.Rejected, reason: reason} }

// Duplicate: this event was applied before. Ack.
func Duplicate(reason string) Outcome { return Outcome{kind: telemetry.Duplicate, reason: reason} }

// Invalid: the message can never be processed. Term and dead letter.
func Invalid(reason string, err error) Outcome {
	return Outcome{kind: telemetry.Invalid, reason: reason, err: err}
}

// Retry: a transient failure. Nak with a backoff delay; dead letter once the deliveries
// are exhausted.
func Retry(reason string, err error) Outcome {
	return Outcome{kind: telemetry.Retry, reason: reason, err: err}
}

// WithOrder names the order the outcome is about, when the runner could not read it from
// the event (raw-payload consumers).
func (o Outcome) WithOrder(id string) Outcome { o.orderID = id; return o }

// Kind is the outcome in the closed set.
func (o Outcome) Kind() telemetry.Outcome { return o.kind }

// Reason is the outcome's metric-safe reason.
func (o Outcome) Reason() string { return o.reason }

// Err is the error behind an invalid or retry outcome.
func (o Outcome) Err() error { return o.err }

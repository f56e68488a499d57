// Package consumer is a stub of Loudly's consumer runner: handlers receive a *Message
// (no ack methods) and return an Outcome.
package consumer

import "context"

type Message struct {
	Subject string
	Data    []byte
	Attempt int
}

type Outcome struct {
	kind, reason string
	err          error
}

func Applied(reason string) Outcome   { return Outcome{kind: "applied", reason: reason} }
func Duplicate(reason string) Outcome { return Outcome{kind: "duplicate", reason: reason} }
func Invalid(reason string, err error) Outcome {
	return Outcome{kind: "invalid", reason: reason, err: err}
}
func Retry(reason string, err error) Outcome { return Outcome{kind: "retry", reason: reason, err: err} }

type Handler func(ctx context.Context, m *Message) Outcome

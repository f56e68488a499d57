// Package silentcheck defines an analyzer that reports message-handling code where a
// branch drops work without a trace.
//
// It exists because of the outage Loudly was built to prevent: a consumer did
//
//	if !isValid(event) {
//		return nil
//	}
//
// and the broker took the nil as success and deleted the message. No log, no metric, no
// retry, no dead letter. The compiler cannot see that mistake; this analyzer can, in the
// handful of shapes it takes.
//
// # Message-handling code
//
// A function or function literal is message-handling code when
//
//   - one of its parameters is a message: *nats.Msg (github.com/nats-io/nats.go),
//     jetstream.Msg (github.com/nats-io/nats.go/jetstream), a type named Message from a
//     package whose path ends in /consumer (Loudly's consumer.Message), or any type with
//     the methods Ack() error and Data() []byte; or
//   - its own body settles a message: it calls Ack, AckSync, DoubleAck, Term,
//     TermWithReason, Nak, NakWithDelay or InProgress on one.
//
// A function literal is judged on its own parameters and body: a closure inside a handler
// is not a handler because of where it is written, and a handler's checks do not look into
// the closures it contains.
//
// # Branches
//
// A branch is the body of an if, the else block of an if, or a case (or default) clause of
// a switch, type switch or select. The findings below are always about the innermost
// branch that holds the return or call; a return or settlement outside every branch is the
// function's main path and is never reported.
//
// An error branch is the body of an if whose condition tests an error against nil
// (err != nil, possibly combined with && or ||), the else block of if err == nil, or a
// case err != nil clause of a switch without a tag.
//
// A success branch is the main path by another name: the body of if err == nil (possibly
// within &&) or the else block of if err != nil (possibly within ||). A return nil or an
// Ack there is not reported.
//
// # Rules
//
// In message-handling code silentcheck reports:
//
//  1. A return that reports success from a branch that records nothing: return nil (every
//     result nil, the last one an error), a bare return in a function whose only result is
//     a named error that the branch neither tests nor sets, and a bare return in a
//     function without results that receives a message (a nats.MsgHandler or
//     jetstream.MessageHandler callback). A branch that settles the message before
//     returning is left to rule 2: a Nak hands the message back for redelivery, an Ack
//     or a Term is judged there.
//  2. A settlement that drops the message: Ack, AckSync or DoubleAck inside an error
//     branch (the broker deletes a message whose processing failed as if it had
//     succeeded; reported even when the branch logs, because the message is gone either
//     way), and Ack, AckSync, DoubleAck, Term or TermWithReason in any branch that records
//     nothing.
//  3. An empty error branch, if err != nil {} (or an empty case err != nil: clause).
//
// # What counts as recording
//
// A branch records something when, before the return (anywhere in the branch for rule 2),
// it
//
//   - returns an explicit value: a non-nil result whose type is not error (an outcome such
//     as consumer.Outcome, a settlement label), or a non-nil error (return err,
//     return fmt.Errorf(...): the error goes to the caller) other than the error of the
//     settlement call itself (return m.Ack() records nothing);
//   - calls a method named Record (telemetry's Decisions.Record, an OTel histogram);
//   - logs: the logging functions of log/slog (Info, Error, Log, LogAttrs, …) and their
//     *slog.Logger methods, the Print, Fatal and Panic functions of package log and their
//     *log.Logger methods;
//   - calls a span method named AddEvent, RecordError or SetStatus;
//   - calls Add on an OpenTelemetry metric instrument (go.opentelemetry.io/otel/metric),
//     or Inc, Add or Observe on a Prometheus client metric;
//   - calls a function or method that itself records on its main path (outside its own
//     branches and loops), directly or through another such function. This is found
//     across packages (an analysis fact), so a shared helper that logs and dead-letters
//     counts wherever it is called from; a helper that records only sometimes does not.
//
// A function literal written in the branch counts only when it is called right there
// (defer func() { ... }() or func() { ... }()); the body of go func() { ... }() may run
// after the message is gone and does not count.
//
// # Limits
//
// The analysis is syntactic within one function: it does not follow a message handed to
// another function, it does not judge continue or break in a loop over fetched messages,
// and it takes a call to a method named Record, AddEvent, RecordError or SetStatus at its
// word whatever the receiver. In Loudly the consumer runner settles and records every
// message in one place; handlers written against it return a consumer.Outcome and meet
// these rules by construction.
//
// # Suppressing a finding
//
// A finding the team has decided is correct is kept quiet with a comment that says why, on
// the line of the finding or the line just above it (for an empty error branch, anywhere
// from the if to its closing brace):
//
//	if replayed {
//		return nil // silentcheck:ok the reconciler accounts for replays
//	}
//
// A silentcheck:ok comment without a reason suppresses nothing and is itself reported:
// the reason is the trace.
package silentcheck

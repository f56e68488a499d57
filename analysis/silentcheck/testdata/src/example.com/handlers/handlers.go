// Package handlers holds handlers written against Loudly's consumer runner
// (consumer.Message in, a decision out).
package handlers

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"

	"example.com/consumer"
	"example.com/dlq"
	"example.com/telemetry"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

type event struct{ ID, OrderID string }

func decode(b []byte) (event, error) { return event{}, nil }
func isValid(e event) bool           { return e.ID != "" }
func apply(e event) error            { return nil }

// The original outage: the broker took the nil for success and deleted the message.
func handleOriginal(ctx context.Context, m *consumer.Message) error {
	event, err := decode(m.Data)
	if err != nil {
		return err
	}
	if !isValid(event) {
		return nil // want `silent path: branch "if !isValid\(event\)" returns nil from a message handler without recording a decision; return an outcome \(consumer.Invalid\(reason, err\)\) or record it with telemetry Decisions.Record before returning`
	}
	return apply(event)
}

type orders struct {
	tel     *telemetry.Telemetry
	drops   metric.Int64Counter
	dropper *dlq.Dropper
}

// The fix, by hand: record the decision and dead-letter the message, then return.
func (o *orders) handleFixed(ctx context.Context, m *consumer.Message) error {
	event, err := decode(m.Data)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if !isValid(event) {
		o.tel.Decisions.Record(ctx, telemetry.Decision{Stage: "consume", Outcome: "invalid", Reason: "schema"})
		if err := dlq.Publish(ctx, m, "schema"); err != nil {
			return err
		}
		return nil
	}
	return apply(event)
}

// The fix the runner wants: return an outcome; the runner settles and records it.
func handleOutcome(ctx context.Context, m *consumer.Message) consumer.Outcome {
	event, err := decode(m.Data)
	if err != nil {
		return consumer.Invalid("malformed", err)
	}
	if !isValid(event) {
		return consumer.Invalid("schema", errors.New("no id"))
	}
	switch err := apply(event); {
	case errors.Is(err, errDuplicate):
		return consumer.Duplicate("seen")
	case err != nil:
		return consumer.Retry("db", err)
	}
	return consumer.Applied("done")
}

var errDuplicate = errors.New("duplicate")

// A shared helper that records, from another package: found through its fact.
func (o *orders) handleHelper(ctx context.Context, m *consumer.Message) error {
	event, _ := decode(m.Data)
	if !isValid(event) {
		if err := dlq.Reject(ctx, o.tel.Decisions, m, "schema"); err != nil {
			return err
		}
		return nil
	}
	if event.OrderID == "" {
		o.dropper.Drop(ctx, "no_order")
		return nil
	}
	if event.OrderID == "ignored" {
		o.skip(ctx, event) // a local helper that records
		return nil
	}
	if event.OrderID == "lost" {
		_ = dlq.Publish(ctx, m, "lost") // want `silent failure: the error of dlq.Publish is thrown away`
		return nil                      // want `silent path: branch "if event.OrderID == \\"lost\\"" returns nil`
	}
	return apply(event)
}

func (o *orders) skip(ctx context.Context, e event) { // want skip:"records"
	o.tel.Logger.InfoContext(ctx, "skipped", "event_id", e.ID)
}

// Every way of leaving a trace, one per branch.
func (o *orders) handleTraces(ctx context.Context, m *consumer.Message) error {
	event, err := decode(m.Data)
	span := trace.SpanFromContext(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("decode %s: %w", m.Subject, err)
	case event.ID == "a":
		slog.Warn("dropping", "reason", "a")
		return nil
	case event.ID == "b":
		log.Printf("dropping %s", event.ID)
		return nil
	case event.ID == "c":
		span.AddEvent("dropped")
		return nil
	case event.ID == "d":
		span.RecordError(errors.New("d"))
		return nil
	case event.ID == "e":
		o.drops.Add(ctx, 1)
		return nil
	case event.ID == "f":
		o.tel.Logger.Error("dropping", "event_id", event.ID)
		return nil
	case event.ID == "g":
		defer func() { o.tel.Logger.Info("dropped", "event_id", event.ID) }()
		return nil
	case event.ID == "h":
		_ = slog.String("reason", "h") // builds an attribute, logs nothing
		return nil                     // want `silent path: branch "case event.ID == \\"h\\"" returns nil`
	case event.ID == "i":
		go func() { o.tel.Logger.Info("dropped later, maybe") }()
		return nil // want `silent path: branch "case event.ID == \\"i\\"" returns nil`
	case event.ID == "j":
		o.tel.Logger.Info("before the branch's own return")
		if event.OrderID == "" {
			return nil // want `silent path: branch "if event.OrderID == \\"\\"" returns nil`
		}
	}
	return apply(event)
}

// A trace before the branch is not a trace of the branch.
func (o *orders) handleLogFirst(ctx context.Context, m *consumer.Message) error { // want handleLogFirst:"records"
	o.tel.Logger.Info("received", "subject", m.Subject)
	event, _ := decode(m.Data)
	if !isValid(event) {
		return nil // want `returns nil from a message handler`
	} else if event.OrderID == "" {
		return nil // want `silent path: branch "if event.OrderID == \\"\\"" returns nil`
	} else {
		if err := apply(event); err != nil {
			return nil // want `silent path: branch "if err != nil" returns nil`
		}
	}
	return nil // the main path: not reported
}

// Swallowed errors.
func (o *orders) handleEmpty(ctx context.Context, m *consumer.Message) consumer.Outcome {
	event, err := decode(m.Data)
	if err != nil { // want `silent path: empty error branch "if err != nil" in a message handler swallows the error; return an outcome \(consumer.Retry\(reason, err\)\), return the error, or record it with telemetry Decisions.Record`
	}
	if err := apply(event); err != nil && event.ID != "" { // want `empty error branch "if err != nil && event.ID != \\"\\""`
		// nothing to do
	}
	switch err := apply(event); {
	case err != nil: // want `empty error branch "case err != nil"`
	case event.ID == "":
	}
	if err := apply(event); err != nil { // silentcheck:ok the apply is best effort and its failure is replayed by the reconciler
	}
	return consumer.Applied("done")
}

// A bare return with a named error result.
func (o *orders) handleNamed(ctx context.Context, m *consumer.Message) (err error) {
	event, err := decode(m.Data)
	if err != nil {
		return // returns the error it tested
	}
	if event.OrderID == "" {
		err = errors.New("no order id")
		return
	}
	if !isValid(event) {
		return // want `silent path: branch "if !isValid\(event\)" ends with a bare return that reports success \(err is not set\)`
	}
	return apply(event)
}

// Suppression needs a reason.
func (o *orders) handleSuppressed(ctx context.Context, m *consumer.Message) error {
	event, _ := decode(m.Data)
	if event.ID == "replay" {
		return nil // silentcheck:ok replays are counted by the reconciler
	}
	if event.ID == "test" {
		// silentcheck:ok synthetic probes from the smoke test carry no order
		return nil
	}
	if event.ID == "" {
		return nil // silentcheck:ok // want `silentcheck:ok needs a reason` `silent path: branch "if event.ID == \\"\\"" returns nil`
	}
	return apply(event)
}

// A handler-shaped closure is judged on its own.
func register(o *orders) consumer.Handler {
	return func(ctx context.Context, m *consumer.Message) consumer.Outcome {
		var h func() error = func() error {
			if m.Attempt > 3 {
				return nil // a closure that neither receives nor settles a message: not judged
			}
			return nil
		}
		if err := h(); err != nil {
			return consumer.Retry("h", err)
		}
		return consumer.Applied("ok")
	}
}

// The success branch of an error check is the main path by another name.
func handleSuccessBranch(ctx context.Context, m *consumer.Message) error {
	event, err := decode(m.Data)
	if err == nil {
		if err := apply(event); err == nil {
			return nil
		}
		return errors.New("apply failed")
	}
	return err
}

// Every kind of branch: else blocks, type switches, selects.
func handleBranches(ctx context.Context, m *consumer.Message, v any) error {
	switch v.(type) {
	case string:
		return nil // want `silent path: branch "case string" returns nil`
	case nil:
		return errors.New("no value")
	}
	select {
	case <-ctx.Done():
		return nil // want `silent path: branch "case <-ctx.Done\(\)" returns nil`
	default:
	}
	if m.Attempt > 3 {
		return errors.New("too many attempts")
	} else {
		return nil // want `silent path: branch "else of if m.Attempt > 3" returns nil`
	}
}

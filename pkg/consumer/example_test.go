package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"loudly/pkg/consumer"
	"loudly/pkg/envelope"
)

// Shipment is the payload of the examples' event type.
type Shipment struct {
	Parcel string `json:"parcel"`
	Weight int    `json:"weight"`
}

// shipmentType registers the event type: the runner decodes and validates its payload
// before a handler sees it, and an event it refuses is Invalid with the reason it gives.
var shipmentType = envelope.NewType("shipment.requested", func(_ envelope.Envelope, s Shipment) error {
	if s.Weight <= 0 {
		return envelope.Invalidf(envelope.ReasonBadField, "weight %d: a parcel weighs something", s.Weight)
	}
	return nil
})

// exampleMessage builds the message a runner would hand a handler: the checked envelope of a
// shipment.requested event.
func exampleMessage(key string, s Shipment) *consumer.Message {
	env, _, err := shipmentType.New(key, s, time.Now())
	if err != nil {
		env, _, _ = envelope.New("shipment.requested", key, s, time.Now()) // the producer's mistake, for the example
	}
	return &consumer.Message{Event: env, Attempt: 1}
}

// A typed handler returns one outcome per message from the closed set; the runner
// settles it (ack, term and dead letter, or nak with backoff) and records it — a span
// event, a counter with an exemplar, a log line. It never acks or logs the decision
// itself, and a payload its type refuses never reaches it.
func ExampleHandle() {
	full := errors.New("depot full")
	handler := consumer.Handle(shipmentType, func(ctx context.Context, m *consumer.Message, s Shipment) consumer.Result {
		switch {
		case s.Parcel == "":
			return consumer.Rejected("no_parcel") // valid, refused by the business
		case s.Weight > 30:
			return consumer.Retry("depot_full", full) // transient: redelivered later
		}
		return consumer.Applied("scheduled")
	})
	for _, s := range []Shipment{{"p-1", 2}, {"", 2}, {"p-3", 40}, {"p-4", 0}} {
		r := handler(context.Background(), exampleMessage("ship-1", s))
		fmt.Printf("%-10s %s\n", r.Outcome(), r.Reason())
	}
	// Output:
	// applied    scheduled
	// rejected   no_parcel
	// retry      depot_full
	// invalid    bad_field
}

// A batch handler decides many messages in one call — one database transaction — and
// still returns one result per message, in order. An error means the whole batch failed
// and nothing took effect: the runner then decides each message again on its own.
func ExampleHandleBatch() {
	batch := consumer.HandleBatch(shipmentType, func(ctx context.Context, items []consumer.Item[Shipment]) ([]consumer.Result, error) {
		out := make([]consumer.Result, len(items))
		total := 0
		for i, it := range items {
			total += it.Payload.Weight
			if total > 10 {
				out[i] = consumer.Rejected("truck_full")
				continue
			}
			out[i] = consumer.Applied("loaded")
		}
		return out, nil
	})
	msgs := []*consumer.Message{exampleMessage("a", Shipment{"p-1", 4}), exampleMessage("b", Shipment{"p-2", 0}),
		exampleMessage("c", Shipment{"p-3", 5}), exampleMessage("d", Shipment{"p-4", 3})}
	err := batch(context.Background(), msgs, func(i int, r consumer.Result) {
		fmt.Printf("message %d: %s %s\n", i, r.Outcome(), r.Reason())
	})
	fmt.Println("batch error:", err)
	// Unordered output:
	// message 1: invalid bad_field
	// message 0: applied loaded
	// message 2: applied loaded
	// message 3: rejected truck_full
	// batch error: <nil>
}

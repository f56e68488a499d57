package consumer_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"loudly/pkg/consumer"
	"loudly/pkg/envelope"
	"loudly/pkg/telemetry"
)

type shipment struct {
	Parcels int `json:"parcels"`
}

var shipmentScheduled = envelope.NewType("shipment.scheduled", func(_ envelope.Envelope, s shipment) error {
	if s.Parcels < 1 {
		return envelope.Invalidf("no_parcels", "a shipment needs a parcel")
	}
	return nil
})

var shipmentCancelled = envelope.NewType[struct{}]("shipment.cancelled", nil)

func message(t *testing.T, typ string, data any) *consumer.Message {
	t.Helper()
	env, b, err := envelope.New(typ, "ship-1", data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &consumer.Message{Event: env, Data: b, Attempt: 1}
}

// Typed handlers see their payload decoded and validated; everything else is decided
// invalid, with its reason, before the business code runs.
func TestHandle_DecodesValidatesAndRoutes(t *testing.T) {
	var got []shipment
	h := consumer.Routes(
		consumer.On(shipmentScheduled, func(_ context.Context, _ *consumer.Message, s shipment) consumer.Result {
			got = append(got, s)
			return consumer.Applied("scheduled")
		}),
		consumer.On(shipmentCancelled, func(context.Context, *consumer.Message, struct{}) consumer.Result {
			return consumer.Applied("cancelled")
		}),
	)
	tests := []struct {
		name    string
		msg     *consumer.Message
		outcome telemetry.Outcome
		reason  string
	}{
		{"a valid shipment", message(t, "shipment.scheduled", shipment{Parcels: 2}), telemetry.Applied, "scheduled"},
		{"the second route", message(t, "shipment.cancelled", struct{}{}), telemetry.Applied, "cancelled"},
		{"a payload the type refuses", message(t, "shipment.scheduled", shipment{}), telemetry.Invalid, "no_parcels"},
		{"a payload with an unknown field", message(t, "shipment.scheduled", map[string]int{"parcels": 1, "crates": 2}), telemetry.Invalid, envelope.ReasonMalformed},
		{"a type no route takes", message(t, "shipment.lost", shipment{Parcels: 1}), telemetry.Invalid, envelope.ReasonUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h(context.Background(), tt.msg)
			if res.Outcome() != tt.outcome || res.Reason() != tt.reason {
				t.Fatalf("result %s/%s (%v), want %s/%s", res.Outcome(), res.Reason(), res.Err(), tt.outcome, tt.reason)
			}
		})
	}
	if len(got) != 1 || got[0].Parcels != 2 {
		t.Errorf("the handler saw %+v, want the one valid shipment", got)
	}
}

// Middleware wraps in the order listed, may decide a message itself, and — given to
// Handle — only ever sees events that passed validation.
func TestMiddleware_OrderAndShortCircuit(t *testing.T) {
	var trail []string
	mw := func(name string, decide bool) consumer.Middleware {
		return func(next consumer.Handler) consumer.Handler {
			return func(ctx context.Context, m *consumer.Message) consumer.Result {
				trail = append(trail, name)
				if decide {
					return consumer.Retry("injected", errors.New(name))
				}
				return next(ctx, m)
			}
		}
	}
	business := func(context.Context, *consumer.Message, shipment) consumer.Result {
		trail = append(trail, "business")
		return consumer.Applied("scheduled")
	}

	h := consumer.Handle(shipmentScheduled, business, mw("outer", false), mw("inner", false))
	if res := h(context.Background(), message(t, "shipment.scheduled", shipment{Parcels: 1})); res.Outcome() != telemetry.Applied {
		t.Fatalf("result %s", res.Outcome())
	}
	if want := []string{"outer", "inner", "business"}; !slices.Equal(trail, want) {
		t.Errorf("trail %v, want %v", trail, want)
	}

	trail = nil
	h = consumer.Handle(shipmentScheduled, business, mw("outer", true), mw("inner", false))
	if res := h(context.Background(), message(t, "shipment.scheduled", shipment{Parcels: 1})); res.Outcome() != telemetry.Retry || res.Reason() != "injected" {
		t.Fatalf("result %s/%s, want the middleware's retry", res.Outcome(), res.Reason())
	}
	if want := []string{"outer"}; !slices.Equal(trail, want) {
		t.Errorf("trail %v, want %v", trail, want)
	}

	trail = nil
	if res := h(context.Background(), message(t, "shipment.scheduled", shipment{})); res.Outcome() != telemetry.Invalid {
		t.Fatalf("result %s, want invalid", res.Outcome())
	}
	if len(trail) != 0 {
		t.Errorf("middleware saw an invalid event: %v", trail)
	}

	trail = nil
	chained := consumer.Chain(func(context.Context, *consumer.Message) consumer.Result {
		trail = append(trail, "handler")
		return consumer.Applied("x")
	}, mw("a", false), mw("b", false))
	chained(context.Background(), message(t, "any.thing", struct{}{}))
	if want := []string{"a", "b", "handler"}; !slices.Equal(trail, want) {
		t.Errorf("Chain trail %v, want %v", trail, want)
	}
}

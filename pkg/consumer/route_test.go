package consumer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"loudly/pkg/consumer"
	"loudly/pkg/envelope"
	"loudly/pkg/telemetry"
)

// A batch that mixes event types of two payloads: each route decides its own events, in
// stream order, in one call; an unknown type is invalid; a route that fails leaves its
// events (and the next routes') undecided for the runner to decide one by one.
func TestRouteBatches(t *testing.T) {
	type shipped struct{ Parcel string }
	type refunded struct{ Amount int }
	shippedType := envelope.NewType("route.shipped", func(envelope.Envelope, shipped) error { return nil })
	refundedType := envelope.NewType("route.refunded", func(_ envelope.Envelope, p refunded) error {
		if p.Amount <= 0 {
			return envelope.Invalidf("bad_amount", "amount %d", p.Amount)
		}
		return nil
	})
	msg := func(typ string, data any) *consumer.Message {
		t.Helper()
		env, _, err := envelope.New(typ, "k", data, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return &consumer.Message{Event: env}
	}
	msgs := []*consumer.Message{
		msg("route.shipped", shipped{"p1"}), msg("route.refunded", refunded{5}), msg("route.other", nil),
		msg("route.shipped", shipped{"p2"}), msg("route.refunded", refunded{-1}),
	}
	var calls [][]string
	var failRefunds bool
	handler := consumer.RouteBatches(
		consumer.OnBatch([]*envelope.Type[shipped]{shippedType}, func(_ context.Context, items []consumer.Item[shipped]) ([]consumer.Result, error) {
			var got []string
			out := make([]consumer.Result, len(items))
			for i, it := range items {
				got, out[i] = append(got, it.Payload.Parcel), consumer.Applied("shipped")
			}
			calls = append(calls, got)
			return out, nil
		}),
		consumer.OnBatch([]*envelope.Type[refunded]{refundedType}, func(_ context.Context, items []consumer.Item[refunded]) ([]consumer.Result, error) {
			if failRefunds {
				return nil, errors.New("deadlock")
			}
			calls = append(calls, []string{"refunds"})
			out := make([]consumer.Result, len(items))
			for i := range items {
				out[i] = consumer.Applied("refunded")
			}
			return out, nil
		}),
	)
	run := func() (map[int]consumer.Result, error) {
		got := map[int]consumer.Result{}
		err := handler(context.Background(), msgs, func(i int, r consumer.Result) { got[i] = r })
		return got, err
	}

	got, err := run()
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{0: "applied/shipped", 1: "applied/refunded", 2: "invalid/unknown_type", 3: "applied/shipped", 4: "invalid/bad_amount"}
	for i, w := range want {
		if r, ok := got[i]; !ok || string(r.Outcome())+"/"+r.Reason() != w {
			t.Errorf("message %d: %v %s/%s, want %s", i, ok, r.Outcome(), r.Reason(), w)
		}
	}
	if len(calls) != 2 || len(calls[0]) != 2 || calls[0][0] != "p1" || calls[0][1] != "p2" {
		t.Errorf("calls %v: want one call with both shipments in stream order, then one with the refund", calls)
	}

	failRefunds, calls = true, nil
	got, err = run()
	if err == nil {
		t.Fatal("a failed route did not fail the batch")
	}
	if _, decided := got[1]; decided || got[0].Outcome() != telemetry.Applied || got[4].Outcome() != telemetry.Invalid {
		t.Errorf("after the refunds failed: %v; want the shipments and the invalid refund decided, the valid refund not", got)
	}
}

package envelope_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"loudly/pkg/envelope"
)

// A service that is not the demo: payments keyed by a reference that is no UUID. Nothing
// in the envelope or the registry may care.
type payment struct {
	Amount   int    `json:"amount"`
	Currency string `json:"currency"`
}

var paymentRequested = envelope.NewType("payment.requested", func(e envelope.Envelope, p payment) error {
	if !strings.HasPrefix(e.Key, "pay-") {
		return envelope.Invalidf("bad_reference", "key %q is not a payment reference", e.Key)
	}
	if p.Amount <= 0 {
		return errors.New("amount must be positive")
	}
	return nil
})

func event(t testing.TB, fields map[string]any) []byte {
	t.Helper()
	doc := map[string]any{
		"id": "0b6e8f0e-4c1b-4bde-9f3a-3f4e54a0c001", "type": "payment.requested", "version": 1,
		"occurred_at": "2026-03-01T12:00:00Z", "key": "pay-0001",
		"data": map[string]any{"amount": 1250, "currency": "EUR"},
	}
	for k, v := range fields {
		if v == nil {
			delete(doc, k)
			continue
		}
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRegistry_DecodesAnotherServicesEvents(t *testing.T) {
	reg := envelope.NewRegistry(paymentRequested)
	tests := []struct {
		name   string
		data   []byte
		reason string
	}{
		{"a payment keyed by its reference", event(t, nil), ""},
		{"an event with no key at all", event(t, map[string]any{"key": nil}), "bad_reference"},
		{"a key the type refuses, with the type's own reason", event(t, map[string]any{"key": "order-1"}), "bad_reference"},
		{"a payload error without a reason is a bad field", event(t, map[string]any{"data": map[string]any{"amount": 0, "currency": "EUR"}}), envelope.ReasonBadField},
		{"an unknown payload field", event(t, map[string]any{"data": map[string]any{"amount": 1, "currency": "EUR", "tip": 1}}), envelope.ReasonMalformed},
		{"a type nobody registered", event(t, map[string]any{"type": "payment.refunded"}), envelope.ReasonUnknownType},
		{"a key longer than the limit", event(t, map[string]any{"key": "pay-" + strings.Repeat("9", envelope.MaxKeyLength)}), envelope.ReasonBadField},
		{"a key with a control character", event(t, map[string]any{"key": "pay-\n0001"}), envelope.ReasonBadField},
		{"an id that is not a UUID", event(t, map[string]any{"id": "1"}), envelope.ReasonBadField},
		{"an unknown version", event(t, map[string]any{"version": 2}), envelope.ReasonUnknownVersion},
		{"an unknown envelope field", event(t, map[string]any{"order_id": "x"}), envelope.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := reg.Decode(tt.data)
			if tt.reason == "" {
				if err != nil || env.Key != "pay-0001" {
					t.Fatalf("Decode = %+v, %v; want the payment keyed pay-0001", env, err)
				}
				return
			}
			var inv *envelope.Invalid
			if !errors.As(err, &inv) || inv.Reason != tt.reason {
				t.Fatalf("Decode error %v, want an *Invalid with reason %q", err, tt.reason)
			}
		})
	}
}

func TestType_NewRefusesWhatItsConsumersWouldDeadLetter(t *testing.T) {
	if _, _, err := paymentRequested.New("pay-7", payment{Amount: 0}, time.Now()); err == nil {
		t.Fatal("New built a payment its consumers would dead-letter")
	}
	env, b, err := paymentRequested.New("pay-7", payment{Amount: 5, Currency: "EUR"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := envelope.NewRegistry(paymentRequested).Decode(b)
	if err != nil || got.ID != env.ID || got.Key != "pay-7" {
		t.Fatalf("Decode(New) = %+v, %v", got, err)
	}
	p, err := paymentRequested.Decode(got)
	if err != nil || p != (payment{Amount: 5, Currency: "EUR"}) {
		t.Fatalf("payload %+v, %v", p, err)
	}
}

func TestNewRegistry_RefusesATypeRegisteredTwice(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("two types named payment.requested were accepted")
		}
	}()
	envelope.NewRegistry(paymentRequested, envelope.NewType[payment]("payment.requested", nil))
}

// FuzzDecode: whatever arrives, Decode rejects it with an *Invalid of a documented reason
// or accepts an envelope that survives re-encoding unchanged.
func FuzzDecode(f *testing.F) {
	f.Add(event(f, nil))
	f.Add(event(f, map[string]any{"key": nil}))
	f.Add([]byte(`{"id":`))
	f.Add([]byte(`{}`))
	reasons := map[string]bool{envelope.ReasonMalformed: true, envelope.ReasonUnknownVersion: true, envelope.ReasonMissingField: true,
		envelope.ReasonBadField: true, envelope.ReasonTooLarge: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := envelope.Decode(data)
		if err != nil {
			var inv *envelope.Invalid
			if !errors.As(err, &inv) || !reasons[inv.Reason] {
				t.Fatalf("error %v (%T) is not an *Invalid with a documented reason", err, err)
			}
			return
		}
		again, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		env2, err := envelope.Decode(again)
		if err != nil {
			t.Fatalf("accepted %q, re-encoded %q is refused: %v", data, again, err)
		}
		if fmt.Sprint(env2.ID, env2.Type, env2.Key, env2.Version) != fmt.Sprint(env.ID, env.Type, env.Key, env.Version) || !env2.OccurredAt.Equal(env.OccurredAt) {
			t.Fatalf("re-encoding changed the envelope: %+v → %+v", env, env2)
		}
	})
}

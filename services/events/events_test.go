package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"loudly/pkg/envelope"
	"loudly/services/events"
)

const (
	eventID = "0b6e8f0e-4c1b-4bde-9f3a-3f4e54a0c001"
	orderID = "7d2f1c9a-1e0b-4a57-8f2e-b1a3c5d7e902"
)

// envelope renders an event document with the given fields replaced (a nil value removes
// the field), so each case below reads as "a valid event, except ...".
func doc(overrides map[string]any) []byte {
	d := map[string]any{
		"id":          eventID,
		"type":        events.TypeOrderPlaced,
		"version":     envelope.CurrentVersion,
		"occurred_at": "2026-03-01T12:00:00Z",
		"key":         orderID,
		"data":        orderData(line("SKU-1", 2)),
	}
	for k, v := range overrides {
		if v == nil {
			delete(d, k)
			continue
		}
		d[k] = v
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

func line(sku string, qty int) map[string]any { return map[string]any{"sku": sku, "quantity": qty} }

func orderData(lines ...map[string]any) map[string]any {
	return map[string]any{"customer_id": "c-42", "lines": lines}
}

func manyLines(n int) []map[string]any {
	ls := make([]map[string]any, n)
	for i := range ls {
		ls[i] = line(fmt.Sprintf("SKU-%d", i), 1)
	}
	return ls
}

// decodeCases is the contract of Decode, and the fuzzer's seed corpus.
var decodeCases = []struct {
	name   string
	data   []byte
	reason string // "" for a valid event
}{
	{"a valid order.placed", doc(nil), ""},
	{"a valid inventory.reserved", doc(map[string]any{"type": events.TypeInventoryReserved, "data": map[string]any{}}), ""},
	{"a valid inventory.rejected", doc(map[string]any{
		"type": events.TypeInventoryRejected, "data": map[string]any{"reason": "insufficient_stock", "sku": "SKU-1"},
	}), ""},
	{"an order with the maximum number of lines", doc(map[string]any{"data": orderData(manyLines(events.MaxLines)...)}), ""},

	{"malformed JSON", []byte(`{"id": "` + eventID + `",`), envelope.ReasonMalformed},
	{"not an object", []byte(`[1, 2, 3]`), envelope.ReasonMalformed},
	{"empty input", []byte{}, envelope.ReasonMalformed},
	{"trailing data after the event", append(doc(nil), []byte(` {}`)...), envelope.ReasonMalformed},
	{"an unknown envelope field", doc(map[string]any{"priority": "high"}), envelope.ReasonMalformed},
	{"an unknown data field", doc(map[string]any{"data": map[string]any{"customer_id": "c-42", "lines": []any{line("SKU-1", 1)}, "coupon": "X"}}), envelope.ReasonMalformed},
	{"a string where a number belongs", doc(map[string]any{"version": "1"}), envelope.ReasonMalformed},
	{"a bad timestamp", doc(map[string]any{"occurred_at": "yesterday"}), envelope.ReasonMalformed},

	{"version 99", doc(map[string]any{"version": 99}), envelope.ReasonUnknownVersion},
	{"a negative version", doc(map[string]any{"version": -1}), envelope.ReasonUnknownVersion},
	{"a missing version", doc(map[string]any{"version": nil}), envelope.ReasonMissingField},
	{"a missing id", doc(map[string]any{"id": nil}), envelope.ReasonMissingField},
	{"a missing type", doc(map[string]any{"type": nil}), envelope.ReasonMissingField},
	{"a missing key (the order id)", doc(map[string]any{"key": nil}), envelope.ReasonMissingField},
	{"a missing occurred_at", doc(map[string]any{"occurred_at": nil}), envelope.ReasonMissingField},
	{"missing data", doc(map[string]any{"data": nil}), envelope.ReasonMissingField},
	{"null data", doc(map[string]any{"data": json.RawMessage("null")}), envelope.ReasonMissingField},
	{"an unknown type", doc(map[string]any{"type": "order.cancelled"}), envelope.ReasonUnknownType},

	{"an id that is not a UUID", doc(map[string]any{"id": "order-1"}), envelope.ReasonBadField},
	{"a key that is not an order id (a UUID)", doc(map[string]any{"key": "12345"}), envelope.ReasonBadField},

	{"no customer", doc(map[string]any{"data": map[string]any{"lines": []any{line("SKU-1", 1)}}}), envelope.ReasonMissingField},
	{"a customer id that is too long", doc(map[string]any{"data": map[string]any{
		"customer_id": strings.Repeat("c", events.MaxCustomerID+1), "lines": []any{line("SKU-1", 1)},
	}}), envelope.ReasonBadField},
	{"no lines", doc(map[string]any{"data": orderData()}), envelope.ReasonMissingField},
	{"too many lines", doc(map[string]any{"data": orderData(manyLines(events.MaxLines + 1)...)}), envelope.ReasonBadField},
	{"quantity 0", doc(map[string]any{"data": orderData(line("SKU-1", 0))}), envelope.ReasonBadField},
	{"a quantity above the limit", doc(map[string]any{"data": orderData(line("SKU-1", events.MaxQuantity+1))}), envelope.ReasonBadField},
	{"a lower-case SKU", doc(map[string]any{"data": orderData(line("sku-1", 1))}), envelope.ReasonBadField},
	{"a duplicate SKU", doc(map[string]any{"data": orderData(line("SKU-1", 1), line("SKU-2", 1), line("SKU-1", 3))}), envelope.ReasonBadField},

	{"an inventory.rejected without a reason", doc(map[string]any{"type": events.TypeInventoryRejected, "data": map[string]any{"sku": "SKU-1"}}), envelope.ReasonMissingField},
	{"an inventory result reason that is too long", doc(map[string]any{
		"type": events.TypeInventoryRejected, "data": map[string]any{"reason": strings.Repeat("r", events.MaxReasonLength+1)},
	}), envelope.ReasonBadField},
	{"an event larger than the limit", doc(map[string]any{"data": map[string]any{
		"customer_id": "c-42", "lines": []any{line("SKU-1", 1)}, "padding": strings.Repeat("x", envelope.MaxEventBytes),
	}}), envelope.ReasonTooLarge},
}

// reasons is the documented set of Invalid reasons.
var reasons = map[string]bool{
	envelope.ReasonMalformed: true, envelope.ReasonUnknownVersion: true, envelope.ReasonUnknownType: true,
	envelope.ReasonMissingField: true, envelope.ReasonBadField: true, envelope.ReasonTooLarge: true,
}

func TestDecode(t *testing.T) {
	for _, tt := range decodeCases {
		t.Run(tt.name, func(t *testing.T) {
			env, err := events.Decode(tt.data)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Decode: %v, want a valid event", err)
				}
				if env.ID != eventID || env.Key != orderID || env.Version != envelope.CurrentVersion {
					t.Errorf("Decode = %+v, want id %s, order %s, version %d", env, eventID, orderID, envelope.CurrentVersion)
				}
				if want := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC); !env.OccurredAt.Equal(want) {
					t.Errorf("occurred_at = %s, want %s", env.OccurredAt, want)
				}
				return
			}
			var inv *envelope.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("Decode error = %v (%T), want *envelope.Invalid with reason %q", err, err, tt.reason)
			}
			if inv.Reason != tt.reason {
				t.Errorf("reason = %q (%s), want %q", inv.Reason, inv.Detail, tt.reason)
			}
			if inv.Detail == "" {
				t.Error("an invalid event has no detail for the person reading the dead letter")
			}
		})
	}
}

func TestDecode_DataOfTheDecodedOrder(t *testing.T) {
	env, err := events.Decode(doc(map[string]any{"data": orderData(line("SKU-1", 2), line("SKU-2", 5))}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := events.OrderPlacedEvent.Decode(env)
	if err != nil {
		t.Fatal(err)
	}
	want := events.OrderPlaced{CustomerID: "c-42", Lines: []events.Line{{SKU: "SKU-1", Quantity: 2}, {SKU: "SKU-2", Quantity: 5}}}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("data = %+v, want %+v", p, want)
	}
}

func TestNew_BuildsAnEventDecodeAccepts(t *testing.T) {
	now := time.Date(2026, 3, 1, 13, 0, 0, 123456789, time.FixedZone("CET", 3600))
	env, b, err := events.New(events.TypeOrderPlaced, orderID, events.OrderPlaced{
		CustomerID: "c-42", Lines: []events.Line{{SKU: "SKU-1", Quantity: 1}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := events.Decode(b)
	if err != nil {
		t.Fatalf("Decode(New(...)): %v", err)
	}
	assertSameEnvelope(t, got, env)
	if got.OccurredAt.Location() != time.UTC {
		t.Errorf("occurred_at is in %s, want UTC", got.OccurredAt.Location())
	}
}

// FuzzDecode: whatever bytes arrive, Decode never panics; it either rejects them with an
// *Invalid whose reason is one of the documented metric labels, or accepts an event that
// survives being encoded and decoded again unchanged.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeCases {
		f.Add(tt.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := events.Decode(data)
		if err != nil {
			var inv *envelope.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("error %v is a %T, want *envelope.Invalid", err, err)
			}
			if !reasons[inv.Reason] {
				t.Fatalf("reason %q is not in the documented set (detail: %s)", inv.Reason, inv.Detail)
			}
			return
		}
		again, err := json.Marshal(env)
		if err != nil {
			t.Fatalf("an accepted event cannot be encoded: %v\nevent: %q", err, data)
		}
		env2, err := events.Decode(again)
		if err != nil {
			t.Fatalf("an accepted event, re-encoded, is rejected: %v\nevent: %q\nre-encoded: %q", err, data, again)
		}
		assertSameEnvelope(t, env2, env)
	})
}

// assertSameEnvelope compares two envelopes field by field; data is compared as JSON
// values, since re-encoding may change its spelling (spacing, escapes) but not its meaning.
func assertSameEnvelope(t *testing.T, got, want envelope.Envelope) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.Version != want.Version || got.Key != want.Key ||
		!got.OccurredAt.Equal(want.OccurredAt) {
		t.Fatalf("envelope = %+v, want %+v", got, want)
	}
	if !sameJSON(t, got.Data, want.Data) {
		t.Fatalf("data = %s, want %s", got.Data, want.Data)
	}
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	decode := func(raw []byte) any {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("data %q is not JSON: %v", raw, err)
		}
		return v
	}
	return reflect.DeepEqual(decode(a), decode(b))
}

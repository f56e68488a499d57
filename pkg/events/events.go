// Package events is the contract between Loudly's services: the envelope every event
// travels in, the payloads, the subjects and streams, and the one strict decoder that turns
// bytes into an event or into a reason why it can never be processed.
package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// Event types and the subjects they are published on. The subject is the type, so a
// consumer's filter subject is its contract.
const (
	TypeOrderPlaced       = "order.placed"
	TypeInventoryReserved = "inventory.reserved"
	TypeInventoryRejected = "inventory.rejected"

	SubjectOrderPlaced       = "orders.placed"
	SubjectInventoryReserved = "inventory.reserved"
	SubjectInventoryRejected = "inventory.rejected"
)

// Streams and the subjects they hold.
const (
	StreamOrders    = "ORDERS"
	StreamInventory = "INVENTORY"
)

// CurrentVersion is the only envelope version this code understands. An event of any
// other version is invalid here: it goes to the dead letters, where it waits for a
// consumer that knows it, instead of being guessed at.
const CurrentVersion = 1

// Envelope is the JSON document every event is.
type Envelope struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Version    int             `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	OrderID    string          `json:"order_id"`
	Data       json.RawMessage `json:"data"`
}

// OrderPlaced is the data of order.placed.
type OrderPlaced struct {
	CustomerID string `json:"customer_id"`
	Lines      []Line `json:"lines"`
}

// Line is one SKU and quantity of an order.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// InventoryResult is the data of inventory.reserved and inventory.rejected.
type InventoryResult struct {
	Reason string `json:"reason,omitempty"` // why it was rejected: insufficient_stock, unknown_sku
	SKU    string `json:"sku,omitempty"`    // the first SKU that caused the rejection
}

// Limits shared by the API and the decoder, so an order the API accepts is always an
// event the consumer accepts.
const (
	MaxLines        = 50
	MaxQuantity     = 1000
	MaxCustomerID   = 64
	MaxEventBytes   = 64 << 10
	MaxReasonLength = 64
)

var skuPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{0,31}$`)

// Invalid is why an event can never be processed. Reason is a short stable token used as a
// metric label; Detail is for people.
type Invalid struct {
	Reason string
	Detail string
}

func (e *Invalid) Error() string { return e.Reason + ": " + e.Detail }

func invalid(reason, format string, args ...any) *Invalid {
	return &Invalid{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Reasons an event is invalid.
const (
	ReasonMalformed      = "malformed_json"
	ReasonUnknownVersion = "unknown_version"
	ReasonUnknownType    = "unknown_type"
	ReasonMissingField   = "missing_field"
	ReasonBadField       = "bad_field"
	ReasonTooLarge       = "too_large"
)

// Decode parses and validates one event. Its error is always an *Invalid: an event that
// fails here fails forever, so the caller dead-letters it.
func Decode(data []byte) (Envelope, error) {
	var env Envelope
	if len(data) > MaxEventBytes {
		return env, invalid(ReasonTooLarge, "event is %d bytes, limit %d", len(data), MaxEventBytes)
	}
	if err := strictUnmarshal(data, &env); err != nil {
		return env, invalid(ReasonMalformed, "envelope: %v", err)
	}
	if env.Version != CurrentVersion {
		if env.Version == 0 {
			return env, invalid(ReasonMissingField, "version is missing")
		}
		return env, invalid(ReasonUnknownVersion, "version %d, this consumer knows %d", env.Version, CurrentVersion)
	}
	switch {
	case env.ID == "":
		return env, invalid(ReasonMissingField, "id is missing")
	case env.Type == "":
		return env, invalid(ReasonMissingField, "type is missing")
	case env.OrderID == "":
		return env, invalid(ReasonMissingField, "order_id is missing")
	case env.OccurredAt.IsZero():
		return env, invalid(ReasonMissingField, "occurred_at is missing")
	case len(env.Data) == 0 || string(env.Data) == "null":
		return env, invalid(ReasonMissingField, "data is missing")
	}
	if _, err := uuid.Parse(env.ID); err != nil {
		return env, invalid(ReasonBadField, "id %q is not a UUID", env.ID)
	}
	if _, err := uuid.Parse(env.OrderID); err != nil {
		return env, invalid(ReasonBadField, "order_id %q is not a UUID", env.OrderID)
	}
	switch env.Type {
	case TypeOrderPlaced:
		var p OrderPlaced
		if err := strictUnmarshal(env.Data, &p); err != nil {
			return env, invalid(ReasonMalformed, "data: %v", err)
		}
		if err := p.Validate(); err != nil {
			return env, err
		}
	case TypeInventoryReserved, TypeInventoryRejected:
		var r InventoryResult
		if err := strictUnmarshal(env.Data, &r); err != nil {
			return env, invalid(ReasonMalformed, "data: %v", err)
		}
		if env.Type == TypeInventoryRejected && r.Reason == "" {
			return env, invalid(ReasonMissingField, "data.reason is missing")
		}
		if len(r.Reason) > MaxReasonLength {
			return env, invalid(ReasonBadField, "data.reason is longer than %d", MaxReasonLength)
		}
	default:
		return env, invalid(ReasonUnknownType, "type %q", env.Type)
	}
	return env, nil
}

// Validate checks an order's content; the API and the decoder share it.
func (p OrderPlaced) Validate() error {
	if p.CustomerID == "" {
		return invalid(ReasonMissingField, "customer_id is missing")
	}
	if len(p.CustomerID) > MaxCustomerID {
		return invalid(ReasonBadField, "customer_id is longer than %d", MaxCustomerID)
	}
	if len(p.Lines) == 0 {
		return invalid(ReasonMissingField, "lines is empty")
	}
	if len(p.Lines) > MaxLines {
		return invalid(ReasonBadField, "%d lines, limit %d", len(p.Lines), MaxLines)
	}
	seen := make(map[string]bool, len(p.Lines))
	for i, l := range p.Lines {
		if !skuPattern.MatchString(l.SKU) {
			return invalid(ReasonBadField, "lines[%d].sku %q: want 1-32 of A-Z, 0-9 and '-'", i, l.SKU)
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			return invalid(ReasonBadField, "lines[%d].quantity %d: want 1..%d", i, l.Quantity, MaxQuantity)
		}
		if seen[l.SKU] {
			return invalid(ReasonBadField, "lines[%d].sku %q appears twice", i, l.SKU)
		}
		seen[l.SKU] = true
	}
	return nil
}

// DecodeData unmarshals the envelope's data into v; Decode has already validated it.
func (e Envelope) DecodeData(v any) error { return json.Unmarshal(e.Data, v) }

// New builds an envelope for data of the given type.
func New(typ, orderID string, data any, now time.Time) (Envelope, []byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, nil, err
	}
	env := Envelope{ID: uuid.NewString(), Type: typ, Version: CurrentVersion, OccurredAt: now.UTC(), OrderID: orderID, Data: raw}
	b, err := json.Marshal(env)
	return env, b, err
}

func strictUnmarshal(data []byte, v any) error { return StrictDecode(bytes.NewReader(data), v) }

// StrictDecode decodes exactly one JSON value into v, rejecting unknown fields and trailing
// data: a producer that drifts from the contract is caught at its first event or request,
// not after it has corrupted state. The HTTP API uses it too.
func StrictDecode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

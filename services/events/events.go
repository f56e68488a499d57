// Package events is the demo's event contract, shared by the order and inventory
// services: the event types and their payloads, the subjects and streams they travel on,
// and each type's validation. It builds on pkg/envelope, which knows no business: every
// event type here is an envelope.Type that carries its own payload and validation, and the
// envelope's key is the order id. A new service declares its own types the same way, in
// its own package, without editing this one or anything under pkg/.
package events

import (
	"regexp"
	"time"

	"github.com/google/uuid"

	"loudly/pkg/envelope"
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
	MaxReasonLength = 64
)

// The event types of the contract. Each validates its payload and its key, the order id.
var (
	OrderPlacedEvent       = envelope.NewType(TypeOrderPlaced, validateOrderPlaced)
	InventoryReservedEvent = envelope.NewType(TypeInventoryReserved, validateResult)
	InventoryRejectedEvent = envelope.NewType(TypeInventoryRejected, validateRejected)
)

// Contract is every event type of the demo, for tools that read any of them.
func Contract() *envelope.Registry {
	return envelope.NewRegistry(OrderPlacedEvent, InventoryReservedEvent, InventoryRejectedEvent)
}

// Decode parses and validates one event of the contract, envelope and payload. Its error
// is always an *envelope.Invalid.
func Decode(data []byte) (envelope.Envelope, error) { return Contract().Decode(data) }

// New builds an event of type typ about an order, without validating its data: tests use
// it to build events a consumer must refuse. Producers use the typed New of each type.
func New(typ, orderID string, data any, now time.Time) (envelope.Envelope, []byte, error) {
	return envelope.New(typ, orderID, data, now)
}

var skuPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{0,31}$`)

// checkOrderKey requires every event of the contract to be about one order: its key is the
// order's UUID.
func checkOrderKey(env envelope.Envelope) error {
	if env.Key == "" {
		return envelope.Invalidf(envelope.ReasonMissingField, "key (the order id) is missing")
	}
	if _, err := uuid.Parse(env.Key); err != nil {
		return envelope.Invalidf(envelope.ReasonBadField, "key %q is not an order id (a UUID)", env.Key)
	}
	return nil
}

func validateOrderPlaced(env envelope.Envelope, p OrderPlaced) error {
	if err := checkOrderKey(env); err != nil {
		return err
	}
	return p.Validate()
}

func validateResult(env envelope.Envelope, r InventoryResult) error {
	if err := checkOrderKey(env); err != nil {
		return err
	}
	if len(r.Reason) > MaxReasonLength {
		return envelope.Invalidf(envelope.ReasonBadField, "data.reason is longer than %d", MaxReasonLength)
	}
	return nil
}

func validateRejected(env envelope.Envelope, r InventoryResult) error {
	if r.Reason == "" {
		if err := checkOrderKey(env); err != nil {
			return err
		}
		return envelope.Invalidf(envelope.ReasonMissingField, "data.reason is missing")
	}
	return validateResult(env, r)
}

// Validate checks an order's content; the API and the decoder share it.
func (p OrderPlaced) Validate() error {
	invalid := envelope.Invalidf
	if p.CustomerID == "" {
		return invalid(envelope.ReasonMissingField, "customer_id is missing")
	}
	if len(p.CustomerID) > MaxCustomerID {
		return invalid(envelope.ReasonBadField, "customer_id is longer than %d", MaxCustomerID)
	}
	if len(p.Lines) == 0 {
		return invalid(envelope.ReasonMissingField, "lines is empty")
	}
	if len(p.Lines) > MaxLines {
		return invalid(envelope.ReasonBadField, "%d lines, limit %d", len(p.Lines), MaxLines)
	}
	seen := make(map[string]bool, len(p.Lines))
	for i, l := range p.Lines {
		if !skuPattern.MatchString(l.SKU) {
			return invalid(envelope.ReasonBadField, "lines[%d].sku %q: want 1-32 of A-Z, 0-9 and '-'", i, l.SKU)
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			return invalid(envelope.ReasonBadField, "lines[%d].quantity %d: want 1..%d", i, l.Quantity, MaxQuantity)
		}
		if seen[l.SKU] {
			return invalid(envelope.ReasonBadField, "lines[%d].sku %q appears twice", i, l.SKU)
		}
		seen[l.SKU] = true
	}
	return nil
}

package events

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Streams of the demo's events.
const (
	StreamOrders    = "ORDERS"
	StreamInventory = "INVENTORY"
)

// Streams are the JetStream streams that carry the demo's events. Every service ensures
// all of them at start-up with the same configuration, so start-up order does not matter
// and a changed configuration is applied by whichever service starts first.
var Streams = []jetstream.StreamConfig{
	{
		Name:        StreamOrders,
		Description: "Orders placed by the order service.",
		Subjects:    []string{"orders.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      72 * time.Hour,
		Duplicates:  2 * time.Minute,
	},
	{
		Name:        StreamInventory,
		Description: "Reservation results published by the inventory service.",
		Subjects:    []string{"inventory.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      72 * time.Hour,
		Duplicates:  2 * time.Minute,
	},
}

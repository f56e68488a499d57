// Package inventory is the inventory service: it consumes order.placed events, reserves
// every line of an order atomically or rejects it with a reason, remembers each event it
// decided (in the same transaction as the stock change), and publishes its result through
// its own outbox. Its HTTP API shows stock and the decision taken for an order.
package inventory

import (
	"loudly/pkg/env"
	"loudly/pkg/service"
	"loudly/services/drill"
)

// Config is the service's configuration: the variables every service reads
// (service.Config) and its own.
type Config struct {
	service.Config
	Drills drill.Config // DRILLS
	HotSKU string       // the SKU the stock-out drill empties
}

// ConfigFromEnv reads the configuration; its error lists every bad variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := env.New(getenv)
	c := Config{
		Config: service.ConfigFromEnv(r, DefaultAddr),
		Drills: drill.ConfigFromEnv(r),
		HotSKU: r.String("HOT_SKU", "BOOK-001"),
	}
	c.Consumer = c.Consumer.Keyed("order_id")
	return c, r.Err()
}

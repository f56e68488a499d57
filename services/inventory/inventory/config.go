// Package inventory is the inventory service: it consumes order.placed events, reserves
// every line of an order atomically or rejects it with a reason, remembers each event it
// decided (in the same transaction as the stock change), and publishes its result through
// its own outbox. Its HTTP API shows stock and the decision taken for an order.
package inventory

import (
	"time"

	"loudly/pkg/consumer"
	"loudly/pkg/env"
	"loudly/pkg/outbox"
)

// Config is the service's configuration; ConfigFromEnv documents each variable's default.
type Config struct {
	DatabaseURL     string
	DBMaxConns      int
	NATSURL         string
	HTTPAddr        string
	Consumer        consumer.Config
	Relay           outbox.RelayConfig
	ShutdownTimeout time.Duration
	HotSKU          string // the SKU the stock-out drill empties
}

// ConfigFromEnv reads the configuration; its error lists every bad variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := env.New(getenv)
	c := Config{
		DatabaseURL: r.URL("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres", "postgresql"),
		DBMaxConns:  r.Int("DB_MAX_CONNS", 20, 2, 1000),
		NATSURL:     r.URL("NATS_URL", "nats://127.0.0.1:4222", "nats", "tls"),
		HTTPAddr:    r.Addr("HTTP_ADDR", ":8081"),
		Consumer:    consumer.Tuning(r).Keyed("order_id"),
		Relay: outbox.RelayConfig{
			BatchSize:    r.Int("OUTBOX_BATCH_SIZE", 100, 1, 10000),
			PollInterval: r.Duration("OUTBOX_POLL_INTERVAL", time.Second),
		},
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		HotSKU:          r.String("HOT_SKU", "BOOK-001"),
	}
	return c, r.Err()
}

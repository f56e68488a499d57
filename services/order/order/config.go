// Package order is the order service: the HTTP API that accepts orders into PostgreSQL
// with their order.placed event in the same transaction, the outbox relay that publishes
// those events, the consumer that settles orders from inventory's results, the watcher
// that fails orders whose event was dead-lettered, and the reconciler that reports orders
// nobody settled.
package order

import (
	"time"

	"loudly/pkg/consumer"
	"loudly/pkg/env"
	"loudly/pkg/outbox"
)

// Config is the service's configuration; ConfigFromEnv documents each variable's default.
type Config struct {
	DatabaseURL string
	DBMaxConns  int
	NATSURL     string
	HTTPAddr    string

	Consumer consumer.Config    // tuning shared by this service's consumers
	Relay    outbox.RelayConfig // outbox relay tuning

	ReconcileInterval  time.Duration // how often the reconciler looks
	SettlementDeadline time.Duration // an order pending longer than this is "unsettled"
	ShutdownTimeout    time.Duration
}

// ConfigFromEnv reads the configuration; its error lists every bad variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := env.New(getenv)
	c := Config{
		DatabaseURL: r.URL("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres", "postgresql"),
		DBMaxConns:  r.Int("DB_MAX_CONNS", 20, 2, 1000),
		NATSURL:     r.URL("NATS_URL", "nats://127.0.0.1:4222", "nats", "tls"),
		HTTPAddr:    r.Addr("HTTP_ADDR", ":8080"),
		Consumer:    consumer.Tuning(r).Keyed("order_id"),
		Relay: outbox.RelayConfig{
			BatchSize:    r.Int("OUTBOX_BATCH_SIZE", 100, 1, 10000),
			PollInterval: r.Duration("OUTBOX_POLL_INTERVAL", time.Second),
		},
		ReconcileInterval:  r.Duration("RECONCILE_INTERVAL", 10*time.Second),
		SettlementDeadline: r.Duration("SETTLEMENT_DEADLINE", time.Minute),
		ShutdownTimeout:    r.Duration("SHUTDOWN_TIMEOUT", 20*time.Second),
	}
	return c, r.Err()
}

// Package order is the order service: the HTTP API that accepts orders into PostgreSQL
// with their order.placed event in the same transaction, the outbox relay that publishes
// those events, the consumer that settles orders from inventory's results, the watcher
// that fails orders whose event was dead-lettered, and the reconciler that reports orders
// nobody settled.
package order

import (
	"time"

	"loudly/pkg/env"
	"loudly/pkg/service"
	"loudly/services/drill"
)

// Config is the service's configuration: the variables every service reads
// (service.Config) and its own.
type Config struct {
	service.Config
	Drills drill.Config // DRILLS

	ReconcileInterval  time.Duration // how often the reconciler looks
	SettlementDeadline time.Duration // an order pending longer than this is "unsettled"
	AcceptCommitters   int           // accept groups committed at once, at most (group.go)
}

// ConfigFromEnv reads the configuration; its error lists every bad variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	r := env.New(getenv)
	c := Config{
		Config:             service.ConfigFromEnv(r, DefaultAddr),
		Drills:             drill.ConfigFromEnv(r),
		ReconcileInterval:  r.Duration("RECONCILE_INTERVAL", 10*time.Second),
		SettlementDeadline: r.Duration("SETTLEMENT_DEADLINE", time.Minute),
		AcceptCommitters:   r.Int("ACCEPT_COMMITTERS", DefaultAcceptCommitters, 1, 64),
	}
	c.Consumer = c.Consumer.Keyed(KeyName)
	return c, r.Err()
}

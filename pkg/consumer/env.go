package consumer

import (
	"time"

	"loudly/pkg/env"
)

// Defaults of Config, documented in the README ("Configuration"). Tuning reads the
// environment against them and withDefaults fills a zero field with them: one value each.
// JetStream's own defaults (unlimited deliveries, 1000 in flight) are overridden on purpose.
const (
	DefaultAckWait       = 30 * time.Second
	DefaultMaxDeliver    = 10
	DefaultBackoffBase   = 500 * time.Millisecond
	DefaultBackoffMax    = 30 * time.Second
	DefaultMaxAckPending = 256
	DefaultConcurrency   = 8
)

// Tuning is the part of Config every service reads from the same environment variables
// (README, "Configuration"): the one place the CONSUMER_* variables are read.
func Tuning(r *env.Reader) Config {
	return Config{
		AckWait:     r.Duration("CONSUMER_ACK_WAIT", DefaultAckWait),
		MaxDeliver:  r.Int("CONSUMER_MAX_DELIVER", DefaultMaxDeliver, 1, 1000),
		BackoffBase: r.Duration("CONSUMER_BACKOFF_BASE", DefaultBackoffBase),
		BackoffMax:  r.Duration("CONSUMER_BACKOFF_MAX", DefaultBackoffMax),
		// Unset, these two stay 0 (DefaultMaxAckPending and DefaultConcurrency once the
		// runner starts), so that a service can choose its own for one consumer: fewer
		// batches in flight where they contend (inventory's hot rows), more messages in
		// flight where many batches must fill (the order service's settlement).
		MaxAckPending: r.Int("CONSUMER_MAX_ACK_PENDING", 0, 1, 100000),
		Concurrency:   r.Int("CONSUMER_CONCURRENCY", 0, 1, 1024),
		BatchSize:     r.Int("CONSUMER_BATCH_SIZE", DefaultBatchSize, 1, 1000),
		BatchWait:     r.Duration("CONSUMER_BATCH_WAIT", DefaultBatchWait),
	}
}

// For returns the tuning applied to one durable consumer.
func (c Config) For(stream, name, filter string) Config {
	c.Stream, c.Name, c.FilterSubject = stream, name, filter
	return c
}

// Keyed returns the tuning with the service's name for its events' key (Config.KeyName).
func (c Config) Keyed(name string) Config {
	c.KeyName = name
	return c
}

package consumer

import "loudly/pkg/env"

// Tuning is the part of Config every service reads from the same environment variables
// (README, "Configuration").
func Tuning(r *env.Reader) Config {
	return Config{
		AckWait:       r.Duration("CONSUMER_ACK_WAIT", 30e9),
		MaxDeliver:    r.Int("CONSUMER_MAX_DELIVER", 10, 1, 1000),
		BackoffBase:   r.Duration("CONSUMER_BACKOFF_BASE", 500e6),
		BackoffMax:    r.Duration("CONSUMER_BACKOFF_MAX", 30e9),
		MaxAckPending: r.Int("CONSUMER_MAX_ACK_PENDING", 256, 1, 100000),
		Concurrency:   r.Int("CONSUMER_CONCURRENCY", 8, 1, 1024),
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

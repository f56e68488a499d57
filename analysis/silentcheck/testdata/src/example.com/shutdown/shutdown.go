// Package shutdown leaves a message when the program is shutting down: a loop or a
// callback without results that returns because its context ended leaves the record
// unmarked and the message unsettled, and the broker hands them out again. A handler that
// returns nil there reports success, and the message is gone.
package shutdown

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"

	"example.com/kafka"
)

func process(ctx context.Context, v []byte) error { return nil }

type consumer struct {
	ctx context.Context
	cl  *kafka.Client
}

func (c *consumer) processRecords(records []*kafka.Record) {
	for _, rec := range records {
		for {
			err := process(c.ctx, rec.Value)
			if err == nil {
				c.cl.MarkCommitRecords(rec)
				break
			}
			if errors.Is(err, context.Canceled) {
				return
			}
			if c.ctx.Err() != nil {
				return
			}
			if len(rec.Value) == 0 {
				return // want `silent path: branch "if len\(rec.Value\) == 0" returns from a message handler`
			}
		}
	}
}

// A handler's return nil on shutdown reports success all the same.
func handle(ctx context.Context, m jetstream.Msg) error {
	if err := process(ctx, m.Data()); errors.Is(err, context.Canceled) {
		return nil // want `silent path: branch "if errors.Is\(err, context.Canceled\)" returns nil`
	}
	return nil
}

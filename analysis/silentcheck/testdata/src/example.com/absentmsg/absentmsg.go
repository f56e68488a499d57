// Package absentmsg tests the message's own nil check: a receive from a closed channel of
// records yields nil, and a nil handed to a handler is no message. Nothing is dropped
// there; a check of what the message holds is still a decision about it.
package absentmsg

import (
	"context"
	"log"

	"github.com/nats-io/nats.go"
)

// Record is a consumed Kafka record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Value     []byte
}

// Partition hands out one partition's records and marks them.
type Partition struct{}

func (*Partition) Records() <-chan *Record     { return nil }
func (*Partition) Errors() <-chan error        { return nil }
func (*Partition) Mark(r *Record)              {}
func save(ctx context.Context, v []byte) error { return nil }

// A nil from the closed channel is skipped: there is no record behind it. An empty value
// skipped with no trace is a record dropped: the next mark commits past it.
func (h *handler) follow(ctx context.Context, p *Partition) {
	for {
		select {
		case rec := <-p.Records():
			if rec == nil {
				continue
			}
			if len(rec.Value) == 0 {
				continue // want `silent path: branch "if len\(rec.Value\) == 0" skips a record without a trace`
			}
			if err := save(ctx, rec.Value); err != nil {
				log.Printf("save %d: %v", rec.Offset, err)
			}
			p.Mark(rec)
		case err := <-p.Errors():
			log.Printf("partition: %v", err)
		case <-ctx.Done():
			return
		}
	}
}

type handler struct{}

// A handler handed nil has nothing to settle; an empty payload is a message it skips.
func onOrder(m *nats.Msg) error {
	if m == nil {
		return nil
	}
	if len(m.Data) == 0 {
		return nil // want `silent path: branch "if len\(m.Data\) == 0" returns nil from a message handler without recording a decision`
	}
	return save(context.Background(), m.Data)
}

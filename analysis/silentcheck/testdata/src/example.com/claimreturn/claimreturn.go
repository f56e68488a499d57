// Package claimreturn tests a consumer group's handler that returns: ending a claim marks
// nothing, and the partition's next owner reads the unmarked records again. A record
// skipped while the claim goes on is still dropped once a later one is marked.
package claimreturn

import (
	"context"
	"log"
)

// Record is a consumed Kafka record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Value     []byte
}

// Session marks records as a consumer group's session does.
type Session interface {
	MarkMessage(r *Record, metadata string)
	Context() context.Context
}

// Claim hands a partition's records to a group handler.
type Claim interface {
	Messages() <-chan *Record
}

type batcher struct{ pending []*Record }

func (b *batcher) add(r *Record) bool { b.pending = append(b.pending, r); return len(b.pending) >= 10 }

// flush hands the batch on and answers false once the session is over.
func (b *batcher) flush(ctx context.Context) bool { return ctx.Err() == nil }

type group struct{}

// The batch is flushed when full; a flush that answers "stop" ends the claim with the
// batch unmarked, to be read again. A record skipped on its content is dropped.
func (g *group) ConsumeClaim(sess Session, claim Claim) error {
	b := &batcher{}
	for {
		select {
		case rec, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if rec.Topic == "audit" {
				continue // want `silent path: branch "if rec.Topic == \\"audit\\"" skips a record without a trace`
			}
			if b.add(rec) {
				if !b.flush(sess.Context()) {
					return nil
				}
				for _, r := range b.pending {
					sess.MarkMessage(r, "")
				}
				b.pending = b.pending[:0]
			}
		case <-sess.Context().Done():
			return nil
		}
	}
}

// A record the claim cannot take ends the claim: nothing is marked past it.
type strict struct{}

func (strict) ConsumeClaim(sess Session, claim Claim) error {
	for rec := range claim.Messages() {
		if len(rec.Value) == 0 {
			return nil
		}
		log.Printf("record %d", rec.Offset)
		sess.MarkMessage(rec, "")
	}
	return nil
}

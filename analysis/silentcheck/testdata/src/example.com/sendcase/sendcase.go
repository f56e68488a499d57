// Package sendcase tests a consumer group's handler that hands each record on a channel
// and marks it in the select case that sent it: the send is the record's hand-off, and
// the mark follows it on the success path.
package sendcase

import "context"

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

type relay struct {
	out  chan *Record
	stop chan struct{}
}

func (h *relay) ConsumeClaim(sess Session, claim Claim) error {
	for {
		var rec *Record
		var ok bool
		select {
		case rec, ok = <-claim.Messages():
			if !ok {
				return nil
			}
		case <-h.stop:
			return nil
		}
		if len(rec.Value) == 0 {
			continue // want `silent path: branch "if len\(rec.Value\) == 0" skips a record without a trace`
		}
		select {
		case h.out <- rec:
			sess.MarkMessage(rec, "")
		case <-h.stop:
			return nil
		}
	}
}

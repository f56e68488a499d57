// Package kafka consumes Kafka records the way the Go clients shape them: a record is a
// struct with a Topic, a Partition, an Offset and a Value; the consumer marks or commits
// offsets, and an offset is positional, so committing a later record settles every
// earlier one. A record skipped without a trace is dropped for good.
package kafka

import (
	"context"
	"errors"
	"log"
)

// Record is a consumed record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
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

// Reader fetches records one by one and commits them, as a reader does.
type Reader struct{}

func (*Reader) FetchMessage(ctx context.Context) (Record, error)       { return Record{}, nil }
func (*Reader) CommitMessages(ctx context.Context, rs ...Record) error { return nil }

// Client polls batches and commits them, as a polling client does.
type Client struct{}

func (*Client) PollRecords(ctx context.Context, max int) []*Record { return nil }
func (*Client) MarkCommitRecords(rs ...*Record)                    {}

type trigger struct{}

func (trigger) fire(v []byte) error { return nil }

type handler struct{ triggers map[string]trigger }

// ConsumeClaim with a filter that skips records silently, and the implicit else: a key
// without a trigger is marked having done nothing.
func (h *handler) ConsumeClaim(sess Session, claim Claim) error {
	for rec := range claim.Messages() {
		if len(rec.Value) == 0 {
			continue // want `silent path: branch "if len\(rec.Value\) == 0" skips a record without a trace`
		}
		if rec.Topic == "audit" {
			log.Printf("audit record %d skipped", rec.Offset)
			continue
		}
		if t, ok := h.triggers[string(rec.Key)]; ok { // want `silent path: when "ok" is false the message is dropped without a trace`
			if err := t.fire(rec.Value); err != nil {
				log.Printf("trigger failed: %v", err)
			}
		}
		sess.MarkMessage(rec, "")
	}
	return nil
}

// The fixed shape: every skip says why.
func (h *handler) consumeLogged(sess Session, claim Claim) error {
	for {
		select {
		case rec, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			t, found := h.triggers[string(rec.Key)]
			if !found {
				log.Printf("no trigger for %s", rec.Key)
				sess.MarkMessage(rec, "")
				continue
			}
			if err := t.fire(rec.Value); err != nil {
				log.Printf("trigger failed: %v", err)
			}
			sess.MarkMessage(rec, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

// A handler that returns the next offset to commit: the record is its argument.
func process(r *Record) (int64, error) {
	if r.Key == nil {
		return r.Offset + 1, nil
	}
	if len(r.Value) == 0 {
		return 0, errors.New("empty record")
	}
	return r.Offset + 1, nil
}

// A handler returning an error: nil commits the record.
func handle(r *Record) error {
	if len(r.Value) == 0 {
		return nil // want `silent path: branch "if len\(r.Value\) == 0" returns nil from a message handler`
	}
	return nil
}

// A reader loop: a record skipped in it is committed with the next one.
func readLoop(ctx context.Context, r *Reader) error {
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		if m.Topic != "orders" {
			continue // want `silent path: branch "if m.Topic != \\"orders\\"" skips a record without a trace`
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return err
		}
	}
}

// A polling loop that commits what it polled.
func pollLoop(ctx context.Context, c *Client) {
	for {
		recs := c.PollRecords(ctx, 100)
		for _, rec := range recs {
			if rec.Key == nil {
				continue // want `silent path: branch "if rec.Key == nil" skips a record without a trace`
			}
			log.Printf("record %d", rec.Offset)
		}
		c.MarkCommitRecords(recs...)
	}
}

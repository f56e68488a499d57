// Package workers decides about its workers, not the record, inside a Kafka record loop:
// when no worker can be had, the record is skipped and its offset is committed with the
// next record's. The decision is about the consumer, but the record is gone all the same.
package workers

import (
	"errors"
	"log"

	"example.com/kafka"
)

var errAllTerminated = errors.New("all workers are terminated")

type worker struct{}

type allocator struct{}

func (allocator) allocate(topic string) (*worker, error) { return nil, nil }

type submitted struct {
	rec *kafka.Record
	w   *worker
}

type trigger struct {
	alloc allocator
	out   chan *submitted
}

func (t *trigger) ConsumeClaim(sess kafka.Session, claim kafka.Claim) error {
	for {
		select {
		case rec := <-claim.Messages():
			w, err := t.alloc.allocate("events")
			if err != nil {
				if errors.Is(err, errAllTerminated) {
					continue // want `silent path: branch "if errors.Is\(err, errAllTerminated\)" skips a record without a trace`
				}
				return err
			}
			t.out <- &submitted{rec: rec, w: w}
			sess.MarkMessage(rec, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

// Logging the skip leaves a trace.
func (t *trigger) logged(sess kafka.Session, claim kafka.Claim) error {
	for rec := range claim.Messages() {
		w, err := t.alloc.allocate("events")
		if err != nil {
			if errors.Is(err, errAllTerminated) {
				log.Printf("no worker for record %d, skipped", rec.Offset)
				continue
			}
			return err
		}
		t.out <- &submitted{rec: rec, w: w}
		sess.MarkMessage(rec, "")
	}
	return nil
}

// offsetSession marks by position, not by record.
type offsetSession interface {
	MarkOffset(topic string, partition int32, offset int64, metadata string)
}

// A group handler that marks offsets by number is judged for taking the claim.
func (t *trigger) byOffset(sess offsetSession, claim kafka.Claim) error {
	for rec := range claim.Messages() {
		w, err := t.alloc.allocate("events")
		if err != nil {
			if errors.Is(err, errAllTerminated) {
				continue // want `silent path: branch "if errors.Is\(err, errAllTerminated\)" skips a record without a trace`
			}
			return err
		}
		t.out <- &submitted{rec: rec, w: w}
		sess.MarkOffset(rec.Topic, rec.Partition, rec.Offset+1, "")
	}
	return nil
}

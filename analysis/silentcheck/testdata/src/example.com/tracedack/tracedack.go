// Package tracedack acknowledges a message in an error branch. The corpus's labelling
// rule (issue #35) calls a logged or returned error a trace: the message is gone, but
// the decision is on record, so the branch is not silent. An ack in an error branch
// with nothing else is still a silent drop.
package tracedack

import (
	"context"
	"encoding/json"
	"log"

	"github.com/nats-io/nats.go/jetstream"

	"example.com/kafka"
)

type event struct{ ID string }

// Unparsable input dropped on purpose and said so.
func handle(m jetstream.Msg) {
	var e event
	if err := json.Unmarshal(m.Data(), &e); err != nil {
		log.Printf("dropping unparsable message: %v", err)
		_ = m.Ack()
		return
	}
	if e.ID == "" {
		_ = m.Ack() // want `silent path: branch "if e.ID == \\"\\"" settles the message \(m.Ack\) without recording a decision`
		return
	}
	if err := store(e); err != nil {
		_ = m.Ack() // want `branch "if err != nil" acknowledges the message \(m.Ack\) on an error path`
		return
	}
	_ = m.Ack()
}

func store(e event) error { return nil }

type group struct{}

// A record marked and its error returned: the error is the trace.
func (group) handle(ctx context.Context, sess kafka.Session, rec *kafka.Record) error {
	var e event
	if err := json.Unmarshal(rec.Value, &e); err != nil {
		sess.MarkMessage(rec, "")
		return err
	}
	if err := store(e); err != nil {
		sess.MarkMessage(rec, "") // want `acknowledges the message \(sess.Commit\) on an error path`
		return nil
	}
	sess.MarkMessage(rec, "")
	return nil
}

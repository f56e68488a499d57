// Package notahandler has functions that take a message without handling one: questions
// about it, a message's own methods, a connection's acknowledgements, a message being
// filled in to be sent.
package notahandler

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A predicate answers a question about a message; its false is not a verdict.
func isFlowControl(m jetstream.Msg) bool {
	if len(m.Data()) != 0 {
		return false
	}
	if m.Headers().Get("Status") == "100" {
		return true
	}
	return false
}

func shouldAck(m *nats.Msg) bool {
	if m.Reply == "" {
		return true
	}
	return false
}

// Channel acknowledges deliveries by tag, like an AMQP channel: it is a connection, not
// a message, so a function taking one handles nothing.
type Channel struct{}

func (*Channel) Ack(tag uint64, multiple bool) error              { return nil }
func (*Channel) Nack(tag uint64, multiple, requeue bool) error    { return nil }
func (*Channel) Reject(tag uint64, requeue bool) error            { return nil }
func (*Channel) Qos(prefetchCount, prefetchSize int, global bool) {}

func setup(ch *Channel, prefetch int) error {
	if prefetch == 0 {
		return nil
	}
	ch.Qos(prefetch, 0, false)
	return nil
}

// A wrapper's own settlement methods are the message, not its consumer.
type Wrapped struct{ msg jetstream.Msg }

func (w *Wrapped) Ack() error  { return w.msg.Ack() }
func (w *Wrapped) Term() error { return w.msg.Term() }
func (w *Wrapped) Nak() error {
	if w.msg == nil {
		return nil
	}
	return w.msg.Nak()
}

// Filling in an outgoing message's headers handles nothing that arrived.
func addHeaders(m *nats.Msg, id string) error {
	if id == "" {
		return nil
	}
	m.Header.Set("Nats-Msg-Id", id)
	m.Data = []byte(id)
	return nil
}

// A filter kept in a field is a question asked later about each message, not a
// handler: its true is a match, not an acknowledgement.
type filter struct {
	match func(m *nats.Msg) bool
}

func newFilter(header, want string) *filter {
	f := &filter{}
	f.match = func(m *nats.Msg) bool {
		if m.Header.Get(header) == want {
			return true
		}
		return false
	}
	return f
}

var anySubject = filter{match: func(m *nats.Msg) bool {
	if m.Subject != "" {
		return true
	}
	return false
}}

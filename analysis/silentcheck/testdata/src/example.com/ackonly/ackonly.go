// Package ackonly has a message type that settles only with Ack() error and carries its
// payload in a Data field, as a NATS Streaming message does.
package ackonly

import "log"

type Msg struct {
	Subject  string
	Sequence uint64
	Data     []byte
}

func (m *Msg) Ack() error { return nil }

type Subscription struct{}

type Conn struct{}

func (*Conn) Subscribe(subject string, cb func(m *Msg)) (*Subscription, error) { return nil, nil }

func subscribe(c *Conn) {
	c.Subscribe("orders", func(m *Msg) {
		if len(m.Data) == 0 {
			m.Ack() // want `silent path: branch "if len\(m.Data\) == 0" settles the message \(m.Ack\) without recording a decision`
			return
		}
		if m.Sequence == 0 {
			log.Printf("no sequence on %s", m.Subject)
			m.Ack()
			return
		}
		m.Ack()
	})
}

// A type with Ack but neither Data method nor field is not a message.
type Ticket struct{ ID string }

func (*Ticket) Ack() error { return nil }

func close(t *Ticket) error {
	if t.ID == "" {
		return nil
	}
	return t.Ack()
}

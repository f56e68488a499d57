// Package handoff sends values to goroutines that wait for them: any send hands
// something on, not only an error or the message.
package handoff

import (
	"github.com/nats-io/nats.go/jetstream"
)

type ackResult struct {
	seq uint64
	err error
}

func consume(c jetstream.Consumer, first chan<- ackResult, seen chan<- bool) {
	c.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			m.Nak()
			return
		}
		if meta.NumDelivered == 1 {
			first <- ackResult{seq: meta.Sequence, err: m.Ack()}
			return
		}
		if meta.NumDelivered > 5 {
			seen <- true
			return
		}
		m.Ack()
	})
}

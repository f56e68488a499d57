// Package selects hands messages on through select statements. A case that receives a
// message is where that message's handling starts, not a decision about it; a select
// whose default is empty next to a case handing the message on drops it when the
// channel is full.
package selects

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A test waits for one message and acks it, or fails.
func TestDelivery(t *testing.T, msgs chan *nats.Msg) {
	select {
	case <-time.After(time.Second):
		t.Fatal("no message")
	case m := <-msgs:
		m.Ack()
	}
}

func forward(nc *nats.Conn, out chan *nats.Msg, wake chan struct{}) {
	nc.Subscribe("in", func(m *nats.Msg) {
		select {
		case out <- m:
		default: // want `silent path: the select's empty default drops the message without a trace when the channel is full`
		}
	})
	// A wake-up signal may be dropped: a signal is already pending.
	nc.Subscribe("poke", func(m *nats.Msg) {
		out <- m
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	// Blocking, or saying why, is fine.
	nc.Subscribe("in-logged", func(m *nats.Msg) {
		select {
		case out <- m:
		default:
			println("queue full, dropping", m.Subject)
		}
	})
}

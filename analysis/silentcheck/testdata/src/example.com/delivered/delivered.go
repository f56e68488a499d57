// Package delivered acknowledges a message once its work is tracked to delivery: the
// message is looked up again by the delivery's id, and acked if it is still there. The
// nil check is a guard that it exists, not a decision about its fate. A branch that
// acks on a decision about the message stays a finding. A log line inside once.Do is
// written before Do returns, so it is a trace.
package delivered

import (
	"context"
	"log"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

type tracker struct {
	mu        sync.Mutex
	pending   map[string]jetstream.Msg
	delivered chan string
}

func (t *tracker) remove(id string) jetstream.Msg {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.pending[id]
	delete(t.pending, id)
	return m
}

func (t *tracker) waitForDelivery(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-t.delivered:
			msg := t.remove(id)
			if msg != nil {
				msg.Ack()
			}
		}
	}
}

func handle(m jetstream.Msg) {
	if len(m.Data()) == 0 {
		m.Ack() // want `silent path: branch "if len\(m.Data\(\)\) == 0" settles the message \(m.Ack\) without recording a decision`
		return
	}
	m.Ack()
}

var once sync.Once

// A log line inside once.Do runs on the spot: a trace, if only the first time.
func handleEmpty(m jetstream.Msg) {
	if len(m.Data()) == 0 {
		m.Ack()
		once.Do(func() {
			log.Printf("messages without data are acknowledged and dropped")
		})
		return
	}
	if m.Data()[0] == '#' {
		m.Ack() // want `silent path: branch "if m.Data\(\)\[0\] == '#'" settles the message \(m.Ack\) without recording a decision`
		go func() { log.Printf("comment dropped") }()
		return
	}
	m.Ack()
}

// Package subscriber has callbacks that decide about themselves rather than the message:
// a closed consumer, a node that is not in charge. Returning there before the work is
// done drops the message all the same; returning after it, or on a condition that only
// ends the callback's extras, does not.
package subscriber

import (
	"log"
	"sync"

	"github.com/nats-io/nats.go"
)

type worker struct {
	mu     sync.Mutex
	closed bool
	leader bool
	out    chan []byte
	count  int
	queue  [][]byte
}

func (w *worker) isClosed() bool { return w.closed }

func (w *worker) start(nc *nats.Conn) {
	// Closed: the message arrives and goes nowhere, and nobody hears of it.
	nc.Subscribe("a", func(m *nats.Msg) {
		if w.isClosed() {
			return // want `silent path: branch "if w.isClosed\(\)" returns before the message's work`
		}
		w.out <- m.Data
	})

	// Not the one in charge: the request is ignored without an answer or a line.
	nc.Subscribe("b", func(m *nats.Msg) {
		if !w.leader {
			return // want `silent path: branch "if !w.leader" returns before the message's work`
		}
		apply(m.Data)
		m.Respond([]byte("ok"))
	})

	// The same guard, said out loud: quiet.
	nc.Subscribe("c", func(m *nats.Msg) {
		if w.isClosed() {
			log.Printf("closed, dropping %s", m.Subject)
			return
		}
		w.out <- m.Data
	})

	// A guard under a lock, before storing the payload for a reader.
	nc.Subscribe("d", func(m *nats.Msg) {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return // want `silent path: branch "if w.closed" returns before the message's work`
		}
		w.queue = append(w.queue, m.Data)
		w.mu.Unlock()
	})

	// After the work, a counter that stops the callback's extras: no decision about the
	// message, which was handled.
	nc.Subscribe("e", func(m *nats.Msg) {
		apply(m.Data)
		w.count++
		if w.count < 10 {
			return
		}
		log.Printf("ten handled")
	})

	// A guard with nothing of the message after it: no work skipped.
	nc.Subscribe("f", func(m *nats.Msg) {
		if w.isClosed() {
			return
		}
		w.count++
	})
}

func apply(data []byte) {}

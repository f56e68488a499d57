// Package gocontinue tests a callback that goes on with the message in a goroutine it
// starts on the spot: the goroutine's branches are the callback's own. A core NATS
// message is gone once the callback returns, so a silent return in there drops it.
package gocontinue

import (
	"encoding/json"
	"errors"
	"log"
	"sync"

	"github.com/nats-io/nats.go"
)

type event struct{ Type string }

type receiver struct {
	mu   sync.Mutex
	seen int
}

func forward(ev event) error { return nil }

func (r *receiver) handle(m *nats.Msg) {
	go func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		var ev event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return // want `silent path: branch "if err != nil" returns from a message handler without settling the message or recording a decision`
		}
		if err := forward(ev); err != nil {
			log.Printf("forward %s: %v", m.Subject, err)
		}
	}()
}

// The same, with the failure logged.
func (r *receiver) handleLogged(m *nats.Msg) {
	go func() {
		var ev event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			log.Printf("undecodable event on %s: %v", m.Subject, err)
			return
		}
		if err := forward(ev); err != nil {
			log.Printf("forward: %v", err)
		}
	}()
}

// A goroutine that does not touch the message is not its handling.
func (r *receiver) handleCounted(m *nats.Msg) {
	go func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.seen > 100 {
			return
		}
		r.seen++
	}()
	if err := forward(event{Type: string(m.Data)}); err != nil {
		log.Print(errors.Join(err))
	}
}

func (r *receiver) start(nc *nats.Conn) {
	nc.Subscribe("events.>", r.handle)
	nc.Subscribe("events.>", r.handleLogged)
	nc.Subscribe("events.>", r.handleCounted)
}

// Package okelse tests an if that holds the work on success (err == nil) without an
// else, as the last thing a callback without results does when nothing settles its
// message: the error's path is an implicit else, and the message ends with the callback.
package okelse

import (
	"encoding/json"
	"log"
	"sync"

	"github.com/nats-io/nats.go"
)

type event struct{ Kind string }

type recorder struct {
	mu     sync.Mutex
	events []event
}

// An undecodable message ends with the callback, unrecorded.
func (r *recorder) onEvent(m *nats.Msg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ev event
	if err := json.Unmarshal(m.Data, &ev); err == nil { // want `silent path: when "err == nil" is false \(the error's path, the if has no else\) the message is dropped without a trace`
		r.events = append(r.events, ev)
	}
}

// The same with a pointer to fill in, decoded into where any value goes.
func (r *recorder) onEventPtr(m *nats.Msg) {
	ev := &event{}
	if err := json.Unmarshal(m.Data, ev); err == nil { // want `silent path: when "err == nil" is false \(the error's path, the if has no else\) the message is dropped without a trace`
		r.events = append(r.events, *ev)
	}
}

// The error's path logs.
func (r *recorder) onEventLogged(m *nats.Msg) {
	var ev event
	if err := json.Unmarshal(m.Data, &ev); err == nil {
		r.events = append(r.events, ev)
	} else {
		log.Printf("undecodable event on %s: %v", m.Subject, err)
	}
}

// A callback that acknowledges on success leaves a failed message unacknowledged: it
// comes back.
func (r *recorder) onEventAcked(m *nats.Msg) {
	var ev event
	if err := json.Unmarshal(m.Data, &ev); err == nil {
		r.events = append(r.events, ev)
		m.Ack()
	}
}

// Something after the if: not the message's end.
func (r *recorder) onEventThenCount(m *nats.Msg) {
	var ev event
	if err := json.Unmarshal(m.Data, &ev); err == nil {
		r.events = append(r.events, ev)
	}
	r.mu.Lock()
	r.mu.Unlock()
}

func (r *recorder) start(nc *nats.Conn) {
	nc.Subscribe("events.>", r.onEvent)
	nc.Subscribe("events.>", r.onEventPtr)
	nc.Subscribe("events.>", r.onEventLogged)
	nc.Subscribe("events.>", r.onEventAcked)
	nc.Subscribe("events.>", r.onEventThenCount)
}

// Package readloops reads Kafka records in loops that are not message handlers: a
// service's main reads from a reader that commits what it hands out (a consumer group's
// ReadMessage), or polls a client that commits what it polled. Nothing in the loop
// settles a record, so nothing makes the function a handler, yet a record skipped there
// is committed with the next one: dropped for good.
package readloops

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
)

// Message is a consumed record.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
}

// Reader reads records one by one and, in a group, commits each as it hands it out.
type Reader struct{}

func (*Reader) ReadMessage(ctx context.Context) (Message, error) { return Message{}, nil }

// Client polls records and commits them in the background.
type Client struct{}

func (*Client) Poll(ctx context.Context) []*Message { return nil }

type event struct{ Type string }

func apply(ev event) error { return nil }

// main's read loop: a record that does not decode, or of a type the service does not
// apply, is skipped without a trace and committed with the next read.
func run(ctx context.Context, r *Reader) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			log.Printf("read: %v", err)
			continue
		}
		var ev event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			continue // want `silent path: branch "if err != nil" skips a record without a trace`
		}
		if ev.Type != "created" {
			continue // want `silent path: branch "if ev.Type != \\"created\\"" skips a record without a trace`
		}
		if err := apply(ev); err != nil {
			log.Printf("apply %d: %v", m.Offset, err)
		}
	}
}

// The fixed shape: every skip says why.
func runLogged(ctx context.Context, r *Reader) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		var ev event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			log.Printf("record %d: bad event: %v", m.Offset, err)
			continue
		}
		if ev.Type != "created" {
			fmt.Printf("record %d: type %s not applied\n", m.Offset, ev.Type)
			continue
		}
		store(ev)
	}
}

type worker struct {
	c      *Client
	paused bool
}

// A poll loop in a worker's Run: a record without a key is skipped silently.
func (w *worker) Run(ctx context.Context) {
	for ctx.Err() == nil {
		for _, rec := range w.c.Poll(ctx) {
			if rec.Key == nil {
				continue // want `silent path: branch "if rec.Key == nil" skips a record without a trace`
			}
			if w.paused {
				continue // a decision about the worker after the record's work: nothing follows to skip
			}
		}
	}
}

func remove(ev event) error { return nil }

// store and erase apply a change and log their own failure: the loops here are about
// other shapes than a step's error thrown away (rule 8, in package discards).
func store(ev event) {
	if err := apply(ev); err != nil {
		log.Printf("apply: %v", err)
	}
}

func erase(ev event) {
	if err := remove(ev); err != nil {
		log.Printf("remove: %v", err)
	}
}

// main's read loop ending in a switch on the event's type: a type no case names is
// committed with the next read having done nothing.
func project(ctx context.Context, r *Reader) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			log.Printf("read: %v", err)
			continue
		}
		var ev event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			log.Printf("record %d: %v", m.Offset, err)
			continue
		}
		switch ev.Type { // want `silent path: a value of "ev.Type" that no case names is dropped without a trace \(the switch has no default\)`
		case "created":
			store(ev)
		case "deleted":
			erase(ev)
		}
	}
}

// The same loop ending in an if that holds the work: another type is skipped silently.
func projectCreated(ctx context.Context, r *Reader) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		var ev event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			log.Printf("record %d: %v", m.Offset, err)
			continue
		}
		if ev.Type == "created" { // want `silent path: when "ev.Type == \\"created\\"" is false the message is dropped without a trace`
			store(ev)
		}
	}
}

// With a default that says why, and an if whose work is not all there is: quiet.
func projectLogged(ctx context.Context, r *Reader) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		var ev event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			log.Printf("record %d: %v", m.Offset, err)
			continue
		}
		switch ev.Type {
		case "created":
			store(ev)
		default:
			log.Printf("record %d: type %q not projected", m.Offset, ev.Type)
		}
		store(ev)
		if ev.Type == "created" {
			erase(ev)
		}
	}
}

// A failed read takes no record: retrying it in silence skips nothing.
func retryRead(ctx context.Context, r *Reader) {
	for ctx.Err() == nil {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			continue
		}
		store(event{Type: string(m.Value)})
	}
}

// The read's error variable is given the record's error later on: the check right after
// the read is still about the read.
func sampled(ctx context.Context, r *Reader, out chan<- []byte) {
	for ctx.Err() == nil {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			continue
		}
		b, err := json.Marshal(m)
		if err != nil {
			continue // want `silent path: branch "if err != nil" skips a record without a trace`
		}
		out <- b
	}
}

// Package corenats has core-NATS callbacks with nothing to settle: they answer, forward
// or hand the error on, and are judged only on what they drop.
package corenats

import (
	"log"

	"encoding/json"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
)

func work(b []byte) error { return nil }

func serve(nc *nats.Conn, errs chan<- error, out chan<- *nats.Msg, onErr func(subject string, err error)) {
	// Request-reply: the requester gets the error as the answer.
	nc.Subscribe("calc", func(m *nats.Msg) {
		n, err := strconv.Atoi(string(m.Data))
		if err != nil {
			m.Respond([]byte("not a number"))
			return
		}
		if n < 0 {
			nc.Publish(m.Reply, []byte("negative"))
			return
		}
		if n == 0 {
			return // want `silent path: branch "if n == 0" returns from a message handler without settling the message or recording a decision`
		}
		m.Respond([]byte(strconv.Itoa(n * 2)))
	})
	// Forwarding to a channel, sending the error to whoever waits for it.
	nc.Subscribe("events", func(m *nats.Msg) {
		var v map[string]any
		if err := json.Unmarshal(m.Data, &v); err != nil {
			errs <- err
			return
		}
		if len(v) == 0 {
			out <- m
			return
		}
	})
	// An error callback decides.
	nc.Subscribe("jobs", func(m *nats.Msg) {
		if err := work(m.Data); err != nil {
			onErr(m.Subject, err)
			return
		}
	})
	// Ack failure: the broker still has the message and redelivers it.
	nc.Subscribe("reindex", func(m *nats.Msg) {
		if err := m.Ack(); err != nil {
			return
		}
		if err := work(m.Data); err != nil {
			log.Printf("reindex: %v", err)
		}
	})
	// Told about a message that failed to publish: not a consumer.
	nats.PublishAsyncErrHandler(func(m *nats.Msg, err error) {
		if m.Subject == "" {
			return
		}
	})
}

// A test's handler fails the test: a trace its reader sees.
func TestConsume(t *testing.T, nc *nats.Conn) {
	nc.Subscribe("t", func(m *nats.Msg) {
		if err := work(m.Data); err != nil {
			t.Fatalf("work: %v", err)
			return
		}
		if err := m.Ack(); err != nil {
			t.Errorf("ack: %v", err)
		}
	})
}

// A helper that receives a message without returning a verdict or settling it is not
// a handler: a core-NATS callback is judged where it is subscribed.
func describe(m *nats.Msg) { // want describe:"drops at corenats.go:87"
	if m.Subject == "" {
		return
	}
}

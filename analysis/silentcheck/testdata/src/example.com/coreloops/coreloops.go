// Package coreloops has loops that take core NATS messages or auto-acknowledged
// deliveries one at a time and settle none of them: a message skipped with continue is
// not redelivered, it is gone.
package coreloops

import (
	"encoding/json"
	"errors"
	"log"
	"time"

	"github.com/nats-io/nats.go"
)

type event struct{ Service string }

type watcher struct {
	sub     *nats.Subscription
	service string
}

// next filters events for other services without a trace.
func (w *watcher) next() (*event, error) {
	var ev *event
	for {
		m, err := w.sub.NextMsg(time.Minute)
		if err != nil && errors.Is(err, errTimeout) {
			continue // the fetch timed out: no message to skip
		} else if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return nil, err
		}
		if w.service != "" && ev.Service != w.service {
			continue // want `silent path: branch "if w.service != \\"\\" && ev.Service != w.service" skips a message without a trace`
		}
		return ev, nil
	}
}

// logged says why it skips: quiet.
func (w *watcher) nextLogged() (*event, error) {
	var ev *event
	for {
		m, err := w.sub.NextMsg(time.Minute)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			log.Printf("bad event: %v", err)
			continue
		}
		return ev, nil
	}
}

var errTimeout = errors.New("timeout")

type socket struct {
	closing chan struct{}
	backlog []*nats.Msg
}

// accept hands each message to its socket, unless the socket is closing: then the message
// is dropped before its work, a decision about the socket, without a trace.
func accept(sub *nats.Subscription, sock *socket) error {
	for {
		m, err := sub.NextMsg(time.Minute)
		if err != nil {
			return err
		}
		select {
		case <-sock.closing:
			continue // want `silent path: branch "case <-sock.closing" skips a message without a trace`
		default:
		}
		sock.backlog = append(sock.backlog, m)
	}
}

// delivery is an AMQP-style delivery, consumed with automatic acknowledgement.
type delivery struct{ CorrelationID string }

func (d delivery) Ack(multiple bool) error           { return nil }
func (d delivery) Nack(multiple, requeue bool) error { return nil }

// consume skips deliveries for a closing socket, in the select case that receives them.
func consume(exit chan struct{}, deliveries <-chan delivery, sock *socket, out chan delivery) {
	for {
		select {
		case <-exit:
			return
		case d, ok := <-deliveries:
			if !ok {
				return
			}
			select {
			case <-sock.closing:
				continue // want `silent path: branch "case <-sock.closing" skips a message without a trace`
			default:
			}
			out <- d
		}
	}
}

// consumeManual settles what it handles: a delivery skipped there is not acknowledged
// and comes back, so the skip is not judged.
func consumeManual(deliveries <-chan delivery, sock *socket, out chan delivery) {
	for d := range deliveries {
		select {
		case <-sock.closing:
			continue
		default:
		}
		out <- d
		d.Ack(false)
	}
}

// drain counts what it reads and keeps going: a continue that skips nothing of the work.
func drain(sub *nats.Subscription, n *int) {
	for {
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			return
		}
		*n++
		if *n%100 != 0 {
			continue
		}
		log.Printf("%d read, last %s", *n, m.Subject)
	}
}

// resubscribe waits for a connection around an inner loop over deliveries: its own
// continues come before any message exists.
func resubscribe(connected func() bool, consume func() <-chan delivery, out chan delivery, wait <-chan struct{}) {
	for {
		select {
		case <-wait:
		default:
			continue
		}
		if !connected() {
			continue
		}
		for d := range consume() {
			out <- d
		}
	}
}

// pollFirst checks its own state before it takes the next message: nothing skipped.
func pollFirst(sub *nats.Subscription, paused func() bool, out chan *nats.Msg) {
	for {
		if paused() {
			continue
		}
		m, err := sub.NextMsg(time.Second)
		if err != nil {
			return
		}
		out <- m
	}
}

type requester interface {
	Request(subj string, data []byte, timeout time.Duration) (*nats.Msg, error)
}

// join retries its request until the answer says yes: a skipped reply is a retry of the
// loop's own request, nobody else's message.
func join(nc requester) bool {
	for i := 0; i < 5; i++ {
		r, err := nc.Request("join", []byte("me"), time.Second)
		if err != nil {
			continue
		}
		if string(r.Data) != "ok" {
			continue
		}
		return true
	}
	return false
}

// firstApart handles the first message its own way and goes on to the next: the
// continue skips nothing.
func firstApart(msgs <-chan *nats.Msg, out chan []byte) {
	i := 0
	for m := range msgs {
		if i == 0 && m.Subject == "hello" {
			out <- m.Data
			i++
			continue
		}
		out <- append([]byte("n:"), m.Data...)
		i++
	}
}

func requestMany(subj string, data []byte) ([]*nats.Msg, error) { return nil, nil }

// gather asks every server and keeps the answers without errors: a skipped answer is the
// function's own request's reply.
func gather() [][]byte {
	msgs, err := requestMany("ping", []byte("{}"))
	if err != nil {
		return nil
	}
	var out [][]byte
	for _, m := range msgs {
		if len(m.Data) == 0 {
			continue
		}
		out = append(out, m.Data)
	}
	return out
}

type asker interface {
	RequestMsg(m *nats.Msg, timeout time.Duration) (*nats.Msg, error)
}

// presence asks each peer in turn, building each request with a constructor: the
// skipped answers are the loop's own requests'.
func presence(nc asker, peers []string) []string {
	var out []string
	for _, p := range peers {
		req := nats.NewMsg("presence." + p)
		var answer *nats.Msg
		answer, err := nc.RequestMsg(req, time.Second)
		if err != nil {
			continue
		}
		if answer.Header.Get("error") != "" {
			continue
		}
		out = append(out, p)
	}
	return out
}

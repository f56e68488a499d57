// Package carried hands a received message to a function that carries its handling on:
// a reply router a loop over deliveries starts for each one, the part of a request
// handler that acts on the decoded request. Those functions are judged like the callback
// that received the message.
package carried

import (
	"log"

	"github.com/nats-io/nats.go"
)

type delivery struct {
	CorrelationID string
	Body          []byte
}

func (d delivery) Ack(multiple bool) error           { return nil }
func (d delivery) Nack(multiple, requeue bool) error { return nil }

type router struct{ waiting map[string]chan delivery }

// route is started for each delivery: one without a waiting request is dropped silently.
func (r *router) route(d delivery) {
	ch := r.waiting[d.CorrelationID]
	if ch == nil {
		return // want `silent path: branch "if ch == nil" returns from a message handler without settling the message or recording a decision`
	}
	ch <- d
}

func (r *router) run(deliveries <-chan delivery) {
	go func() {
		for d := range deliveries {
			go r.route(d)
		}
	}()
}

// request is decoded by its own method, as generated protobuf code is.
type request struct {
	Channel string
}

func (q *request) Unmarshal(b []byte) error { return nil }

type server struct {
	owned map[string]bool
}

// onClose decodes the request and hands it, with the message, to perform.
func (s *server) onClose(m *nats.Msg) { // want onClose:"records"
	req := &request{}
	if err := req.Unmarshal(m.Data); err != nil {
		log.Printf("invalid close request: %v", err)
		m.Respond([]byte("invalid"))
		return
	}
	s.perform(m, req)
}

// perform filters on the decoded request, silently.
func (s *server) perform(m *nats.Msg, req *request) { // want perform:"records"
	if !s.owned[req.Channel] {
		return // want `silent path: branch "if !s.owned\[req.Channel\]" returns from a message handler without settling the message or recording a decision`
	}
	m.Respond([]byte("closed"))
}

// performLogged says why: quiet.
func (s *server) performLogged(m *nats.Msg, req *request) { // want performLogged:"records"
	if !s.owned[req.Channel] {
		log.Printf("channel %s is not ours", req.Channel)
		return
	}
	m.Respond([]byte("closed"))
}

func (s *server) onCloseLogged(m *nats.Msg) { // want onCloseLogged:"records"
	req := &request{}
	if err := req.Unmarshal(m.Data); err != nil {
		log.Printf("invalid close request: %v", err)
		return
	}
	s.performLogged(m, req)
}

// describe is given the message by nobody that handles it: not judged itself, only known
// to drop what it is given, for whoever calls it.
func describe(m *nats.Msg) { // want describe:"drops at carried.go:92" describe:"records"
	if m.Reply == "" {
		return
	}
	log.Printf("reply to %s", m.Reply)
}

func (s *server) subscribe(nc *nats.Conn) {
	nc.Subscribe("close", s.onClose)
	nc.Subscribe("close.logged", s.onCloseLogged)
}

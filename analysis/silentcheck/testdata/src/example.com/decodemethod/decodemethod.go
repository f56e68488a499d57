// Package decodemethod decodes requests with a method of the request type (generated
// protobuf code: req.Unmarshal(data) error). What the method fills in comes from the
// message, so a filter on it decides about the message.
package decodemethod

import (
	"log"

	"github.com/nats-io/nats.go"
)

type subscribeRequest struct{ Subject, ClientID string }

func (r *subscribeRequest) Unmarshal(b []byte) error { return nil }

type server struct {
	served map[string]bool
	mine   func(subject string) bool
}

func (s *server) processSubscribe(m *nats.Msg) { // want processSubscribe:"records"
	req := &subscribeRequest{}
	if err := req.Unmarshal(m.Data); err != nil {
		log.Printf("invalid subscription request: %v", err)
		return
	}
	if !s.served[req.Subject] {
		return // want `silent path: branch "if !s.served\[req.Subject\]" returns from a message handler`
	}
	if ok := s.mine(req.ClientID); !ok {
		log.Printf("client %s is not ours", req.ClientID)
		return
	}
	m.Respond([]byte("+OK"))
}

func (s *server) start(nc *nats.Conn) { nc.Subscribe("sub", s.processSubscribe) }

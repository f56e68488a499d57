// Package workdone ends callbacks with an if that holds an extra, not the work: the
// request was already carried out above it (a function invoked, a row stored), and the
// if only posts the result when a callback address was given. An if that holds the only
// work done with the message is still its implicit-else filter.
package workdone

import (
	"encoding/json"
	"log"

	"github.com/nats-io/nats.go"
)

type request struct {
	Function    string
	Body        []byte
	CallbackURL string
}

type invoker struct{}

func (invoker) invoke(fn string, body []byte) ([]byte, error) { return nil, nil }
func (invoker) post(url string, result []byte)                {}

func (iv invoker) worker(nc *nats.Conn) {
	nc.Subscribe("queue", func(m *nats.Msg) {
		var req request
		if err := json.Unmarshal(m.Data, &req); err != nil {
			log.Printf("bad request: %v", err)
			return
		}
		result, err := iv.invoke(req.Function, req.Body)
		if err != nil {
			log.Printf("invoke %s: %v", req.Function, err)
		}
		if req.CallbackURL != "" {
			iv.post(req.CallbackURL, result)
		}
	})
}

// Decoding is reading the message, not working on it: the if still holds all the work.
func (iv invoker) filter(nc *nats.Conn) {
	nc.Subscribe("queue", func(m *nats.Msg) {
		var req request
		if err := json.Unmarshal(m.Data, &req); err != nil {
			log.Printf("bad request: %v", err)
			m.Term()
			return
		}
		if req.Function != "" { // want `silent path: when "req.Function != \\"\\"" is false the message is dropped without a trace`
			iv.invoke(req.Function, req.Body) // want `silent failure: the error of iv.invoke is thrown away`
		}
		m.Ack()
	})
}

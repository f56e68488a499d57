// Package rpcuser forwards what it consumes through another package's producer. Only a
// helper of the code being checked (its own package here, where no module is known) is
// followed for a silent return; the library's producer is not.
package rpcuser

import (
	"example.com/rpclib"

	"github.com/nats-io/nats.go"
)

func forward(nc *nats.Conn, out *rpclib.Client) {
	nc.Subscribe("in", func(m *nats.Msg) {
		out.Produce(m.Data)
		m.Ack()
	})
}

// Its own helper with a silent filter is followed.
func relay(data []byte, out *rpclib.Client) { // want relay:"drops at rpcuser.go:22"
	if len(data) > 1024 {
		return
	}
	out.Produce(data)
}

func forwardFiltered(nc *nats.Conn, out *rpclib.Client) {
	nc.Subscribe("in", func(m *nats.Msg) {
		relay(m.Data, out) // want `silent path: relay is handed the message`
		m.Ack()
	})
}

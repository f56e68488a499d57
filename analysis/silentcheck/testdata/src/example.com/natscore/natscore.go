// Package natscore handles core NATS messages (*nats.Msg), whose Data is a field.
package natscore

import (
	"log"

	"github.com/nats-io/nats.go"
)

func subscribe(nc *nats.Conn, l *log.Logger) {
	nc.Subscribe("orders.placed", func(m *nats.Msg) {
		if len(m.Data) == 0 {
			return // want `silent path: branch "if len\(m.Data\) == 0" returns from a message handler without settling the message`
		}
		if m.Subject == "" {
			l.Printf("no subject")
			return
		}
		if m.Header == nil {
			m.Term() // want `settles the message \(m.Term\) without recording a decision`
			return
		}
		if err := work(m.Data); err != nil {
			_ = m.AckSync() // want `acknowledges the message \(m.AckSync\) on an error path`
		}
		_ = m.Ack()
	})
}

func work(b []byte) error { return nil }

// Building a message to publish is not handling one.
func build(subject string, data []byte) (*nats.Msg, error) {
	if len(data) == 0 {
		return nil, nil
	}
	m := nats.NewMsg(subject)
	m.Data = data
	return m, nil
}

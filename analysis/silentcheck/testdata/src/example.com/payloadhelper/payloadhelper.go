// Package payloadhelper hands the message, or only its payload, to helpers. A helper
// that returns early on a decision about what it was handed, with no trace, drops the
// message for its caller: the finding is at the call, naming the helper's return.
package payloadhelper

import (
	"bytes"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type printer struct {
	filter []byte
	log    *slog.Logger
}

// show filters silently on the payload.
func (p *printer) show(subject string, data []byte) { // want show:"drops at payloadhelper.go:22" show:"records"
	if !bytes.Contains(data, p.filter) {
		return
	}
	p.log.Info("event", "subject", subject, "data", string(data))
}

// showLogged says why it skips.
func (p *printer) showLogged(subject string, data []byte) { // want showLogged:"records"
	if !bytes.Contains(data, p.filter) {
		p.log.Debug("filtered", "subject", subject)
		return
	}
	p.log.Info("event", "subject", subject)
}

// onNATS hands the payload on to show: it drops what show drops. Handed the message by
// the callback below, it is where that message's handling goes on, judged like the
// callback: the finding is here, not at the callback's call.
func (p *printer) onNATS(m *nats.Msg) { // want onNATS:"records"
	p.show(m.Subject, m.Data) // want `silent path: p.show is handed the message \(or its payload\) and returns without a trace at payloadhelper.go:22`
}

func (p *printer) subscribe(nc *nats.Conn, c jetstream.Consumer) {
	nc.Subscribe("a", func(m *nats.Msg) {
		p.onNATS(m)
	})
	c.Consume(func(m jetstream.Msg) {
		p.show(m.Subject(), m.Data()) // want `silent path: p.show is handed the message \(or its payload\) and returns without a trace at payloadhelper.go:22`
		m.Ack()
	})
	nc.Subscribe("b", func(m *nats.Msg) {
		p.showLogged(m.Subject, m.Data)
	})
	nc.Subscribe("c", func(m *nats.Msg) {
		p.show("fixed", []byte("not the message's"))
	})
}

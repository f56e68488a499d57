// Package collect checks messages in an if without an else. Collecting an error for a
// report is a check, not work on the message; adding the message to a batch in such an
// if is the work, and the else it lacks is a filter.
package collect

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
)

type results struct {
	errs  []error
	batch []*nats.Msg
}

func (r *results) check(nc *nats.Conn, want string) {
	nc.Subscribe("latency", func(m *nats.Msg) {
		if !strings.EqualFold(m.Header.Get("Trace-Id"), want) {
			r.errs = append(r.errs, fmt.Errorf("trace id %q", m.Header.Get("Trace-Id")))
		}
	})
}

func (r *results) gather(nc *nats.Conn) {
	nc.Subscribe("orders", func(m *nats.Msg) {
		if m.Header.Get("Kind") == "order" { // want `silent path: when "m.Header.Get\(\\"Kind\\"\) == \\"order\\"" is false the message is dropped without a trace`
			r.batch = append(r.batch, m)
		}
		m.Ack()
	})
}

// Package ifacelog logs through interfaces: the team's own Logger held in a package
// variable, a framework's logger handed in. Whatever implements them is not visible
// here, so a method shaped like a logger's (a message or a format, then what to write
// with it, and no result) counts as a log line.
package ifacelog

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
)

// Logger is a team's own logging interface.
type Logger interface {
	Printf(format string, args ...any)
	Error(msg string, err error)
	Warnf(format string, args ...any)
}

var log Logger

// Store is not a logger: its methods answer something or take no message.
type Store interface {
	Save(key string, value []byte) error
	Name(id string)
}

func subscribe(nc *nats.Conn, l Logger, s Store) {
	nc.Subscribe("a", func(m *nats.Msg) {
		var v map[string]any
		if err := json.Unmarshal(m.Data, &v); err != nil {
			log.Printf("undecodable message on %s: %v", m.Subject, err)
			return
		}
		if len(v) == 0 {
			l.Warnf("empty message on %s", m.Subject)
			return
		}
		if _, ok := v["id"]; !ok {
			l.Error("no id", nil)
			return
		}
		if _, ok := v["kind"]; !ok {
			s.Name("kind") // not a log line
			return         // want `silent path: branch "if !ok" returns from a message handler`
		}
		if err := s.Save(m.Subject, m.Data); err != nil {
			return // want `silent path: branch "if err != nil" returns from a message handler`
		}
	})
}

// A function value shaped like a logger logs too.
func withLogf(nc *nats.Conn, logf func(format string, args ...any)) {
	nc.Subscribe("b", func(m *nats.Msg) {
		if len(m.Data) == 0 {
			logf("empty message on %s", m.Subject)
			return
		}
		m.Respond(m.Data)
	})
}

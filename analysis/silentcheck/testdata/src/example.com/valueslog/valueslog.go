// Package valueslog logs through an interface whose plain methods take only values
// (Error(args ...any)), beside their formatting siblings (Errorf(format, args...)): the
// shape of several logging kits. l.Error(err) is a log line. A method taking only values
// on an interface without that sibling is not known to log.
package valueslog

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
)

// Logger is a logging kit's interface.
type Logger interface {
	Error(args ...any)
	Errorf(format string, args ...any)
	Info(args ...any)
	Infof(format string, args ...any)
}

// Tags is not a logger: Add takes values but has no formatting sibling.
type Tags interface {
	Add(args ...any)
}

type sub struct {
	l Logger
	t Tags
}

func (s *sub) handle(m *nats.Msg) { // want handle:"records"
	var v map[string]any
	if err := json.Unmarshal(m.Data, &v); err != nil {
		s.l.Error(err)
		return
	}
	if len(v) == 0 {
		s.l.Info("empty message on ", m.Subject)
		return
	}
	if _, ok := v["id"]; !ok {
		s.t.Add("noid")
		return // want `silent path: branch "if !ok" returns from a message handler`
	}
	m.Respond(m.Data)
}

func subscribe(nc *nats.Conn, s *sub) {
	nc.Subscribe("a", s.handle)
}

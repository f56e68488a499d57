package ifacelog

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
)

// LevelLogger takes a finished message per level: a family of level methods, a logger
// whatever its implementation filters.
type LevelLogger interface {
	Debug(msg string)
	Info(msg string)
	Warn(msg string)
	Error(msg string)
}

// Alerter has one level-named method and nothing beside it: not enough to call a logger.
type Alerter interface {
	Warn(msg string)
	Close()
}

func levels(nc *nats.Conn, l LevelLogger, a Alerter) {
	nc.Subscribe("c", func(m *nats.Msg) {
		var v map[string]any
		if err := json.Unmarshal(m.Data, &v); err != nil {
			l.Warn(fmt.Sprintf("undecodable message on %s: %s", m.Subject, err))
			return
		}
		if len(v) == 0 {
			a.Warn("empty message")
			return // want `silent path: branch "if len\(v\) == 0" returns from a message handler`
		}
		m.Respond(m.Data)
	})
}

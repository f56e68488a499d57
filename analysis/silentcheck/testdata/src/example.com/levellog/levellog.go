// Package levellog logs through loggers that take a level first, and through a concrete
// logger that writes only when it has somewhere to write. Both are loggers by what they
// do: they take a message (or a format and its values) and hand it on.
package levellog

import (
	"encoding/json"
	"io"

	"github.com/nats-io/nats.go"
)

type Level int8

const ErrorLevel Level = 3

// Logger is a framework's logger: the level comes first.
type Logger interface {
	Log(level Level, v ...any)
	Logf(level Level, format string, v ...any)
}

var DefaultLogger Logger

// Errorf is the framework's package-level shortcut.
func Errorf(format string, v ...any) { DefaultLogger.Logf(ErrorLevel, format, v...) } // want Errorf:"records"

// ServerLog writes only when an output was configured.
type ServerLog struct{ out io.Writer }

func (l *ServerLog) Errorf(format string, v ...any) { // want Errorf:"records"
	l.call(func(w io.Writer) { write(w, format, v...) })
}

func (l *ServerLog) call(f func(w io.Writer)) {
	if l.out == nil {
		return
	}
	f(l.out)
}

func write(w io.Writer, format string, v ...any) {}

type event struct{ Kind string }

type server struct {
	log    *ServerLog
	logger Logger
}

func (s *server) subscribe(nc *nats.Conn) {
	nc.Subscribe("a", func(m *nats.Msg) {
		var ev event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			s.logger.Log(ErrorLevel, err)
			return
		}
	})
	nc.Subscribe("b", func(m *nats.Msg) {
		var ev event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			s.logger.Logf(ErrorLevel, "decoding %s: %v", m.Subject, err)
			return
		}
	})
	nc.Subscribe("c", func(m *nats.Msg) {
		var ev event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			Errorf("decoding %s: %v", m.Subject, err)
			return
		}
	})
	nc.Subscribe("d", func(m *nats.Msg) {
		if len(m.Data) != 16 {
			s.log.Errorf("invalid request, %d bytes", len(m.Data))
			return
		}
		if m.Reply == "" {
			return // want `silent path: branch "if m.Reply == \\"\\"" returns from a message handler`
		}
		m.Respond(m.Data)
	})
}

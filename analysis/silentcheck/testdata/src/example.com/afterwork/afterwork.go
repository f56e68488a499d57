// Package afterwork returns from callbacks once the work is done: a timer reset, a
// counter reaching its limit, a message already handed to a call above. Those branches
// decide nothing about the message; a filter on the message still does.
package afterwork

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

type state struct {
	count, limit int64
	timer        *time.Timer
	done         chan struct{}
}

func (s *state) print(m *nats.Msg) {}

func ignored(subject string) bool { return subject == "_INBOX.x" }

func subscribe(nc *nats.Conn, s *state) {
	nc.Subscribe(">", func(m *nats.Msg) {
		if ignored(m.Subject) {
			return // want `silent path: branch "if ignored\(m.Subject\)" returns from a message handler`
		}
		s.print(m)
		if n := atomic.AddInt64(&s.count, 1); n == s.limit {
			close(s.done)
			return
		}
		if s.timer != nil && !s.timer.Reset(time.Second) {
			return
		}
	})
}

// The implicit else: the answer sits in an if with no else, so a malformed request is
// neither answered nor recorded.
func answer(nc *nats.Conn) {
	nc.Subscribe("calc", func(m *nats.Msg) {
		parts := strings.Fields(string(m.Data))
		if len(parts) == 2 { // want `silent path: when "len\(parts\) == 2" is false the message is dropped without a trace`
			m.Respond([]byte(parts[0] + parts[1]))
		}
	})
	nc.Subscribe("calc-fixed", func(m *nats.Msg) {
		parts := strings.Fields(string(m.Data))
		if len(parts) != 2 {
			m.Respond([]byte("want two numbers"))
			return
		}
		m.Respond([]byte(parts[0] + parts[1]))
	})
	nc.Subscribe("check", func(m *nats.Msg) {
		if len(m.Data) == 0 {
			print("empty message on ", m.Subject)
		}
		m.Respond(m.Data)
	})
}

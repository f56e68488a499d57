// Package afterwork returns from callbacks once the work is done: a timer reset, a
// counter reaching its limit, a message already handed to a call above. Those branches
// decide nothing about the message; a filter on the message still does.
package afterwork

import (
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

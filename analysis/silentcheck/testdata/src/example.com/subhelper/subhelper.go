// Package subhelper hands a message's subject, payload and the subscription it arrived on
// to a helper, which looks the subscription up and returns when it is not found: the
// message is filtered by where it came from, silently.
package subhelper

import (
	"log"
	"sync"

	"github.com/nats-io/nats.go"
)

type wrap struct{ channel string }

type broker struct {
	mu   sync.RWMutex
	subs map[string]wrap
	out  func(channel string, data []byte)
}

func (b *broker) handleMessage(subject string, data []byte, sub *nats.Subscription) { // want handleMessage:"drops at subhelper.go:26"
	b.mu.RLock()
	w, ok := b.subs[sub.Subject]
	b.mu.RUnlock()
	if !ok {
		return
	}
	b.out(w.channel, data)
}

func (b *broker) handleLogged(subject string, data []byte, sub *nats.Subscription) {
	w, ok := b.subs[sub.Subject]
	if !ok {
		log.Printf("no subscription for %s", sub.Subject)
		return
	}
	b.out(w.channel, data)
}

func (b *broker) handle(m *nats.Msg) {
	b.handleMessage(m.Subject, m.Data, m.Sub) // want `silent path: b.handleMessage is handed the message \(or its payload\) and returns without a trace at subhelper.go:26`
}

func (b *broker) handle2(m *nats.Msg) {
	b.handleLogged(m.Subject, m.Data, m.Sub)
}

func (b *broker) subscribe(nc *nats.Conn) {
	nc.Subscribe("a", b.handle)
	nc.Subscribe("b", b.handle2)
}

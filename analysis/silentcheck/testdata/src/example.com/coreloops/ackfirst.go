package coreloops

import (
	"log"

	"github.com/nats-io/nats.go"
)

// pullAckFirst acknowledges each fetched message before it looks at it: a message of a
// subject no handler takes is skipped after its ack, and does not come back.
func pullAckFirst(sub *nats.Subscription, handlers map[string]func(*nats.Msg) error) {
	for {
		msgs, err := sub.Fetch(10)
		if err != nil {
			log.Printf("fetch: %v", err)
			continue
		}
		for _, m := range msgs {
			m.Ack()
			h, ok := handlers[m.Subject]
			if !ok {
				continue // want `silent path: branch "if !ok" skips a message without a trace`
			}
			if err := h(m); err != nil {
				log.Printf("%s: %v", m.Subject, err)
			}
		}
	}
}

// pullAckLast acknowledges after the work: a message skipped before that is not
// acknowledged, and comes back.
func pullAckLast(sub *nats.Subscription, handlers map[string]func(*nats.Msg) error) {
	for {
		msgs, err := sub.Fetch(10)
		if err != nil {
			log.Printf("fetch: %v", err)
			continue
		}
		for _, m := range msgs {
			h, ok := handlers[m.Subject]
			if !ok {
				continue
			}
			if err := h(m); err != nil {
				log.Printf("%s: %v", m.Subject, err)
				continue
			}
			m.Ack()
		}
	}
}

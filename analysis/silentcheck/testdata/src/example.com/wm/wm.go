// Package wm handles Watermill messages: *message.Message is known by its methods
// (Ack() bool, Nack() bool), its handlers by being handed to the router.
package wm

import (
	"encoding/json"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
)

type signedUp struct {
	Consent bool
	Email   string
}

func register(r *message.Router, log *slog.Logger, s *service) {
	// The seed outage in Watermill's shape: the router acks a nil.
	r.AddNoPublisherHandler("newsletter", "users", nil, func(msg *message.Message) error {
		var ev signedUp
		if err := json.Unmarshal(msg.Payload, &ev); err != nil {
			return err
		}
		if !ev.Consent {
			return nil // want `silent path: branch "if !ev.Consent" returns nil from a message handler without recording a decision`
		}
		return nil
	})
	r.AddNoPublisherHandler("newsletter-fixed", "users", nil, func(msg *message.Message) error {
		var ev signedUp
		if err := json.Unmarshal(msg.Payload, &ev); err != nil {
			return err
		}
		if !ev.Consent {
			log.Info("no consent: not subscribed", "uuid", msg.UUID)
			return nil
		}
		return nil
	})
	r.AddHandler("forward", "in", nil, "out", nil, func(msg *message.Message) ([]*message.Message, error) {
		if len(msg.Payload) == 0 {
			return nil, nil // want `silent path: branch "if len\(msg.Payload\) == 0" returns nil`
		}
		return []*message.Message{msg}, nil
	})
	r.AddHandler("method", "in", nil, "out", nil, s.handle)
}

type service struct{}

// Handed to AddHandler as a method value.
func (s *service) handle(msg *message.Message) ([]*message.Message, error) {
	if msg.UUID == "" {
		return nil, nil // want `silent path: branch "if msg.UUID == \\"\\"" returns nil`
	}
	if len(msg.Payload) > 1024 {
		return []*message.Message{msg}, nil // forwarded: the work moves on
	}
	return nil, nil
}

// A publisher decorator takes messages to publish: it handles none.
type decorator struct{ message.Publisher }

func (d decorator) Publish(topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	return d.Publisher.Publish(topic, msgs...)
}

func process(m *message.Message) error { return nil }

// Messages settled by hand from a subscription channel.
func consume(ch <-chan *message.Message) {
	for msg := range ch {
		if len(msg.Payload) == 0 {
			msg.Ack() // want `silent path: branch "if len\(msg.Payload\) == 0" settles the message \(msg.Ack\) without recording a decision`
			continue
		}
		if err := process(msg); err != nil {
			msg.Nack()
			continue
		}
		msg.Ack()
	}
}

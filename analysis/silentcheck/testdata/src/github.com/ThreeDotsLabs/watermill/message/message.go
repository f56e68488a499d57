// Package message is a stub of Watermill's message package: a message is settled with
// Ack() bool and Nack() bool, its body is the Payload field.
package message

import "context"

type Payload []byte

type Message struct {
	UUID    string
	Payload Payload
}

func (m *Message) Ack() bool                { return true }
func (m *Message) Nack() bool               { return true }
func (m *Message) Context() context.Context { return context.Background() }

type HandlerFunc func(msg *Message) ([]*Message, error)

type NoPublishHandlerFunc func(msg *Message) error

type Handler struct{}

type Router struct{}

func (r *Router) AddHandler(name, subscribeTopic string, subscriber any, publishTopic string, publisher any, handlerFunc HandlerFunc) *Handler {
	return nil
}

func (r *Router) AddNoPublisherHandler(name, subscribeTopic string, subscriber any, handlerFunc NoPublishHandlerFunc) *Handler {
	return nil
}

// Publisher takes messages to publish: a function that does so is not a handler.
type Publisher interface {
	Publish(topic string, messages ...*Message) error
}

// Package nackdiscard settles AMQP deliveries with Nack and Reject: told not to requeue,
// the broker discards the message (or dead-letters it, out of sight), a termination like
// Term; told to requeue, it comes back, a retry like Nak.
package nackdiscard

import (
	"encoding/json"
	"log"

	amqp "github.com/rabbitmq/amqp091-go"
)

type order struct{ ID string }

func store(o order) error { return nil }

func consume(deliveries <-chan amqp.Delivery) {
	for d := range deliveries {
		var o order
		if err := json.Unmarshal(d.Body, &o); err != nil {
			d.Nack(false, false) // want `silent path: branch "if err != nil" settles the message \(d.Nack without requeue\) without recording a decision`
			continue
		}
		if o.ID == "" {
			d.Reject(false) // want `silent path: branch "if o.ID == \\"\\"" settles the message \(d.Reject without requeue\)`
			continue
		}
		if err := store(o); err != nil {
			d.Nack(false, true) // requeued: it comes back
			continue
		}
		d.Ack(false)
	}
}

// The same decisions, each with its trace.
func consumeLogged(deliveries <-chan amqp.Delivery) {
	for d := range deliveries {
		var o order
		if err := json.Unmarshal(d.Body, &o); err != nil {
			log.Printf("undecodable order: %v", err)
			d.Nack(false, false)
			continue
		}
		if o.ID == "" {
			d.Reject(true) // requeued: a retry, not a drop
			continue
		}
		d.Ack(false)
	}
}

// A team's wrapper whose Nack takes only the requeue flag.
type Message struct {
	Body     string
	delivery amqp.Delivery
}

func (m *Message) Ack()              { m.delivery.Ack(false) }
func (m *Message) Nack(requeue bool) { m.delivery.Nack(false, requeue) }

func handle(m *Message) error {
	if m.Body == "" {
		m.Nack(false) // want `silent path: branch "if m.Body == \\"\\"" settles the message \(m.Nack without requeue\)`
		return nil
	}
	if m.Body == "later" {
		m.Nack(true)
		return nil
	}
	if m.Body == "bad" {
		log.Printf("bad body")
		m.Nack(false)
		return nil
	}
	m.Ack()
	return nil
}

// A requeue flag not known here is not taken for a discard.
func handleFlag(m *Message, retry bool) error {
	if m.Body == "" {
		m.Nack(retry)
		return nil
	}
	m.Ack()
	return nil
}

// On the main path of a loop, a Nack without requeue drops every message.
func drain(deliveries <-chan amqp.Delivery) {
	for d := range deliveries {
		d.Nack(false, false) // want `silent path: branch "for range deliveries" settles the message \(d.Nack without requeue\)`
	}
}

type kind string

// A handler that keeps the settlement's error and hands it back: the nack's own failure,
// or nil, is all the caller learns; why the message was discarded is nowhere.
func handleKind(d amqp.Delivery) error {
	switch kind(d.Headers["kind"].(string)) {
	case "order":
		var o order
		if err := json.Unmarshal(d.Body, &o); err != nil {
			log.Printf("undecodable order: %v", err)
			return d.Nack(false, false)
		}
		return d.Ack(false)
	default:
		err := d.Nack(false, false) // want `silent path: branch "default" settles the message \(d.Nack without requeue\) without recording a decision`
		if err != nil {
			return err
		}
		return nil
	}
}

// The decision's own error handed back beside the settlement is a trace.
func handleReturned(d amqp.Delivery) error {
	var o order
	err := json.Unmarshal(d.Body, &o)
	if err != nil {
		if nerr := d.Nack(false, false); nerr != nil {
			return nerr
		}
		return err
	}
	return d.Ack(false)
}

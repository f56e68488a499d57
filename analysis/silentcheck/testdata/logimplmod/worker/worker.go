// Package worker logs through the team's Logger interface, implemented in another
// package of the module: what its methods do is known from the adapter that implements
// them.
package worker

import (
	"encoding/json"

	"example.com/logimplmod/broker"
	"example.com/logimplmod/logger"
)

type order struct{ ID string }

type Worker struct {
	log     logger.Logger
	tracker logger.Tracker
	store   func(order) error
}

func (w *Worker) handle(d *broker.Delivery) {
	var o order
	if err := json.Unmarshal(d.Body, &o); err != nil {
		w.log.Error("bad order", err)
		d.Reject(false)
		return
	}
	if o.ID == "" {
		w.tracker.Track("order without id")
		d.Reject(false) // want `silent path: branch "if o.ID == \\"\\"" settles the message \(d.Reject without requeue\) without recording a decision`
		return
	}
	if err := w.store(o); err != nil {
		w.log.Error("store", err)
		d.Nack(true)
		return
	}
	d.Ack()
}

func (w *Worker) Start() { broker.Consume("orders", w.handle) }

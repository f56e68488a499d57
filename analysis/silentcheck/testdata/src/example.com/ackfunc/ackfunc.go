// Package ackfunc tests an ack function: a closure returned beside a delivery and called
// with the outcome of its processing (func(ctx, err error) error). It settles the way the
// error says; the decision was made, and its error returned, where the delivery was
// processed. A settlement it decides on anything else is still judged.
package ackfunc

import (
	"context"
	"regexp"

	amqp "github.com/rabbitmq/amqp091-go"
)

type reader struct {
	autoAck bool
	reject  []*regexp.Regexp
	drain   bool
}

// AckFunc settles a delivery with the outcome of its processing.
type AckFunc func(ctx context.Context, err error) error

func (r *reader) read(ch <-chan amqp.Delivery) ([]byte, AckFunc) {
	d := <-ch
	return d.Body, func(_ context.Context, res error) error {
		if r.autoAck {
			return nil
		}
		if res != nil {
			for _, p := range r.reject {
				if p.MatchString(res.Error()) {
					return d.Nack(false, false)
				}
			}
			return d.Nack(false, true)
		}
		return d.Ack(false)
	}
}

// The same closure, discarding on the reader's state instead of the outcome.
func (r *reader) readDraining(ch <-chan amqp.Delivery) ([]byte, AckFunc) {
	d := <-ch
	return d.Body, func(_ context.Context, res error) error {
		if len(d.Body) == 0 {
			return d.Reject(false) // want `silent path: branch "if len\(d.Body\) == 0" settles the message \(d.Reject without requeue\) without recording a decision`
		}
		if res != nil {
			return d.Nack(false, true)
		}
		return d.Ack(false)
	}
}

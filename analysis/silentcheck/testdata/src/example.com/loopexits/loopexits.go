// Package loopexits has loops over deliveries in code that is not a handler (a service
// starts a goroutine ranging over its consumer's channel): a return out of such a loop
// on a bad message leaves that message and every later one unhandled, and an error
// branch that only builds an error and throws it away is as silent as an empty one.
package loopexits

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
)

// Delivery is a broker's delivery, known by its methods.
type Delivery struct{ Body []byte }

func (d Delivery) Ack(multiple bool) error           { return nil }
func (d Delivery) Nack(multiple, requeue bool) error { return nil }
func (d Delivery) Reject(requeue bool) error         { return nil }

type reading struct{ Device string }

type store struct{}

func (*store) Save(ctx context.Context, r reading) error { return nil }

type consumer struct {
	deliveries <-chan Delivery
	st         *store
}

// Poll's goroutine returns on a body that does not decode: the consumer stops, silently.
func (c *consumer) Poll(ctx context.Context) {
	go func() {
		for d := range c.deliveries {
			var r reading
			if err := json.Unmarshal(d.Body, &r); err != nil {
				return // want `silent path: branch "if err != nil" returns out of a loop over messages without a trace; the message is left unhandled, and so is every one after it`
			}
			if r.Device == "" {
				return // want `silent path: branch "if r.Device == \\"\\"" returns out of a loop over messages without a trace`
			}
			if err := c.st.Save(ctx, r); err != nil {
				log.Printf("save: %v", err)
				continue
			}
			d.Ack(false)
		}
	}()
}

// The fixed shape, and the loop's ends that are no decision about a message: the
// context ending, a closed channel, a stop the caller is told of.
func (c *consumer) PollLogged(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case d, ok := <-c.deliveries:
			if !ok {
				return nil
			}
			var r reading
			if err := json.Unmarshal(d.Body, &r); err != nil {
				log.Printf("bad body, stopping: %v", err)
				return nil
			}
			if r.Device == "halt" {
				return errors.New("halt requested")
			}
			if err := c.st.Save(ctx, r); err != nil {
				log.Printf("save: %v", err)
				d.Nack(false, true)
				continue
			}
			d.Ack(false)
		}
	}
}

type biller struct{}

func (*biller) Charge(r reading) {}

// run ranges over auto-acknowledged deliveries: a body that does not decode is charged
// empty, its error built and thrown away.
func run(deliveries <-chan Delivery, b *biller) {
	go func() {
		for d := range deliveries {
			var r reading
			err := json.Unmarshal(d.Body, &r)
			if err != nil { // want `silent path: empty error branch "if err != nil" in a loop over messages swallows the error`
				_ = fmt.Errorf("decode: %w", err)
			}
			b.Charge(r)
		}
	}()
}

// runLogged says so; an error from something else than the message is not its decision.
func runLogged(deliveries <-chan Delivery, b *biller, setup func() error) {
	for d := range deliveries {
		var r reading
		if err := json.Unmarshal(d.Body, &r); err != nil {
			_ = fmt.Errorf("decode: %w", err)
			log.Printf("decode: %v", err)
		}
		if err := setup(); err != nil {
		}
		b.Charge(r)
	}
}

// A handler's error branch that throws its error away is empty too.
func handle(d Delivery) error {
	var r reading
	if err := json.Unmarshal(d.Body, &r); err != nil { // want `silent path: empty error branch "if err != nil" in a message handler swallows the error`
		_ = errors.New("bad body")
	}
	return d.Ack(false)
}

// forward hands each delivery on, then stops at the last one it was asked for: the
// return comes after the message's work.
func forward(ctx context.Context, deliveries <-chan Delivery, out chan<- []byte, last string) {
	go func() {
		for d := range deliveries {
			select {
			case <-ctx.Done():
				return
			case out <- d.Body:
			}
			if string(d.Body) == last {
				return
			}
		}
	}()
}

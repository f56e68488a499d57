// Package discards has handlers that throw away the error of a step of the message's
// work (rule 8): a result published with its error dropped, a handler started as a
// goroutine whose error nobody reads. When the step fails the message ends as if it had
// been done, and nothing says it was not.
package discards

import (
	"context"
	"encoding/json"
	"log"

	"github.com/nats-io/nats.go"
)

type order struct{ ID, Item string }

type stock struct{}

// Fill reserves the order's items; it hands its failure back without a word.
func (*stock) Fill(ctx context.Context, o order) (int, error) { return 0, nil }

// FillLogged logs every failure before handing it back: it has explained it.
func (*stock) FillLogged(ctx context.Context, o order) error { // want FillLogged:"explains its empty answers or failures"
	if o.Item == "" {
		err := errStock("no item")
		log.Printf("fill %s: %v", o.ID, err)
		return err
	}
	return nil
}

type errStock string

func (e errStock) Error() string { return string(e) }

type service struct {
	nc *nats.Conn
	st *stock
}

func (s *service) start() { s.nc.Subscribe("orders", s.Checked) }

// Checked publishes what it did with the publish's error dropped, twice.
func (s *service) Checked(m *nats.Msg) {
	var o order
	if err := json.Unmarshal(m.Data, &o); err != nil {
		log.Printf("bad order: %v", err)
		return
	}
	out, _ := json.Marshal(o)
	_ = s.nc.Publish("orders.checked", out) // want `silent failure: the error of s.nc.Publish is thrown away; when that step fails the message ends as if its work were done`
	s.nc.Publish("orders.audit", out)       // want `silent failure: the error of s.nc.Publish is thrown away`
}

// Reserve drops the reservation's error, with its count.
func (s *service) Reserve(ctx context.Context, m *nats.Msg) error {
	var o order
	if err := json.Unmarshal(m.Data, &o); err != nil {
		return err
	}
	_, _ = s.st.Fill(ctx, o) // want `silent failure: the error of s.st.Fill is thrown away`
	return m.Ack()
}

// What is not a thrown-away step of the work: a settlement's own error, a reply (the
// requester's timeout is its trace), a decoding error thrown away with its value kept
// (judged where the value is used), a publish of nothing from the message, a step
// whose function logs every failure itself, a call kept in a variable.
func (s *service) Quiet(ctx context.Context, m *nats.Msg) error { // want Quiet:"explains its empty answers or failures" Quiet:"records"
	o, _ := decode(m.Data)
	_ = json.Unmarshal(m.Data, &o)
	_ = s.nc.Publish("heartbeat", nil)
	_ = s.st.FillLogged(ctx, o)
	_ = m.Respond([]byte(o.ID))
	if err := s.nc.Publish("orders.seen", []byte(o.ID)); err != nil {
		return err
	}
	_ = m.Ack()
	return nil
}

func decode(b []byte) (order, error) {
	var o order
	return o, json.Unmarshal(b, &o)
}

type handler struct{}

func (handler) handle(ctx context.Context, m *nats.Msg) error { return nil }

// A loop over fetched messages in a function that is not a handler: each message handed
// to a goroutine whose error nobody reads.
func pump(ctx context.Context, sub *nats.Subscription, h handler) {
	for {
		msgs, err := sub.Fetch(10)
		if err != nil {
			return
		}
		for _, m := range msgs {
			go h.handle(ctx, m) // want `silent failure: the error of h.handle is thrown away`
		}
	}
}

// Outside message-handling code a dropped error is errcheck's business, not this rule's.
func announce(nc *nats.Conn, o order) {
	b, _ := json.Marshal(o)
	_ = nc.Publish("orders.new", b)
}

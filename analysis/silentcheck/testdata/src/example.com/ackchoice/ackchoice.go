// Package ackchoice acknowledges on the success path in one of several ways: a branch
// that only chooses how (or, by the program's configuration, whether) to acknowledge
// decides nothing about the message.
package ackchoice

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

type config struct {
	double, ackAll bool
}

func consume(ctx context.Context, c jetstream.Consumer, cfg config, errs chan<- error) {
	c.Consume(func(m jetstream.Msg) {
		if err := work(m.Data()); err != nil {
			m.Nak()
			return
		}
		var err error
		if cfg.double {
			err = m.DoubleAck(ctx)
		} else {
			err = m.Ack()
		}
		if err != nil {
			errs <- err
		}
	})
	c.Consume(func(m jetstream.Msg) {
		if cfg.ackAll {
			m.Ack()
		}
	})
	c.Consume(func(m jetstream.Msg) {
		if len(m.Data()) == 0 {
			m.Ack() // want `silent path: branch "if len\(m.Data\(\)\) == 0" settles the message \(m.Ack\) without recording a decision`
			return
		}
		m.Ack()
	})
}

func work(b []byte) error { return nil }

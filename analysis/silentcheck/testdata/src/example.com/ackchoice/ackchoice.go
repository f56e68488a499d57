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

// A job says whether it is acknowledged up front (at most once) or after its work.
type job struct {
	autoAck bool
	payload []byte
}

func decodeJob(b []byte) job { return job{payload: b} }

func push(j job) {}

// Acknowledged before the work when the job asks for it, and the work goes on: a choice
// of when to acknowledge, not of the message's fate.
func consumeJobs(ctx context.Context, c jetstream.Consumer) {
	c.Consume(func(m jetstream.Msg) {
		j := decodeJob(m.Data())
		if j.autoAck {
			_ = m.Ack()
		}
		push(j)
	})
	// The same ack that leaves instead of doing the work is a drop.
	c.Consume(func(m jetstream.Msg) {
		j := decodeJob(m.Data())
		if j.autoAck {
			_ = m.Ack() // want `silent path: branch "if j.autoAck" settles the message \(m.Ack\) without recording a decision`
			return
		}
		push(j)
		m.Ack()
	})
}

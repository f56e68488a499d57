// Package jetstream is a stub of github.com/nats-io/nats.go/jetstream.
package jetstream

import (
	"context"
	"time"
)

type Msg interface {
	Data() []byte
	Subject() string
	Ack() error
	DoubleAck(context.Context) error
	Nak() error
	NakWithDelay(delay time.Duration) error
	InProgress() error
	Term() error
	TermWithReason(reason string) error
	Headers() Header
	Metadata() (*MsgMetadata, error)
}

type Header map[string][]string

func (h Header) Get(k string) string { return "" }

type MsgMetadata struct {
	Sequence     uint64
	NumDelivered uint64
}

type MessageHandler func(msg Msg)

type ConsumeContext interface{ Stop() }

type Consumer interface {
	Consume(handler MessageHandler) (ConsumeContext, error)
	Fetch(batch int) ([]Msg, error)
}

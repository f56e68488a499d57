// Package nats is a stub of github.com/nats-io/nats.go with the shapes silentcheck
// looks at.
package nats

import "time"

type Header map[string][]string

type AckOpt interface{}

// Msg is a core NATS message: Data is a field, the ack methods take options.
type Msg struct {
	Subject string
	Data    []byte
	Header  Header
}

func (m *Msg) Ack(opts ...AckOpt) error                        { return nil }
func (m *Msg) AckSync(opts ...AckOpt) error                    { return nil }
func (m *Msg) Nak(opts ...AckOpt) error                        { return nil }
func (m *Msg) NakWithDelay(d time.Duration, o ...AckOpt) error { return nil }
func (m *Msg) Term(opts ...AckOpt) error                       { return nil }
func (m *Msg) InProgress(opts ...AckOpt) error                 { return nil }

type MsgHandler func(msg *Msg)

type Subscription struct{}

type Conn struct{}

func (c *Conn) Subscribe(subj string, cb MsgHandler) (*Subscription, error) { return nil, nil }

func NewMsg(subject string) *Msg { return &Msg{Subject: subject, Header: Header{}} }

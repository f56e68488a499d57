// Package nats is a stub of github.com/nats-io/nats.go with the shapes silentcheck
// looks at.
package nats

import "time"

type Header map[string][]string

type AckOpt interface{}

// Msg is a core NATS message: Data is a field, the ack methods take options.
type Msg struct {
	Subject string
	Reply   string
	Data    []byte
	Header  Header
	Sub     *Subscription
}

func (h Header) Get(k string) string { return "" }
func (h Header) Set(k, v string)     {}

func (m *Msg) Respond(data []byte) error { return nil }

func (m *Msg) Ack(opts ...AckOpt) error                        { return nil }
func (m *Msg) AckSync(opts ...AckOpt) error                    { return nil }
func (m *Msg) Nak(opts ...AckOpt) error                        { return nil }
func (m *Msg) NakWithDelay(d time.Duration, o ...AckOpt) error { return nil }
func (m *Msg) Term(opts ...AckOpt) error                       { return nil }
func (m *Msg) InProgress(opts ...AckOpt) error                 { return nil }

type MsgHandler func(msg *Msg)

type Subscription struct{ Subject string }

func (s *Subscription) Unsubscribe() error { return nil }

type Conn struct{}

func (c *Conn) Subscribe(subj string, cb MsgHandler) (*Subscription, error) { return nil, nil }
func (c *Conn) Publish(subj string, data []byte) error                      { return nil }

func (s *Subscription) Fetch(batch int) ([]*Msg, error)       { return nil, nil }
func (s *Subscription) NextMsg(d time.Duration) (*Msg, error) { return nil, nil }

// MsgErrHandler is told about a message that failed to publish.
type MsgErrHandler func(m *Msg, err error)

func PublishAsyncErrHandler(cb MsgErrHandler) {}

// Status plumbing inside the client: it handles messages all day and is nobody's
// consumer, so silentcheck does not judge it.
func (c *Conn) handleStatus(m *Msg) {
	if len(m.Data) == 0 {
		return
	}
	if m.Header.Get("Status") == "100" {
		m.Ack()
		return
	}
}

func (c *Conn) start() { c.Subscribe("_INBOX.status", c.handleStatus) }

func NewMsg(subject string) *Msg { return &Msg{Subject: subject, Header: Header{}} }

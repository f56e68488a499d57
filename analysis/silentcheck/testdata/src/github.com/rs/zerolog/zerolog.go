// Package zerolog is a stub of github.com/rs/zerolog: an Event is emitted by Msg or Send.
package zerolog

type Event struct{}

func (e *Event) Err(err error) *Event   { return e }
func (e *Event) Str(k, v string) *Event { return e }
func (e *Event) Msg(msg string)         {}
func (e *Event) Send()                  {}

type Logger struct{}

func (l Logger) Error() *Event { return &Event{} }
func (l Logger) Warn() *Event  { return &Event{} }

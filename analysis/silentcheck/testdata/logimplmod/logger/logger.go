// Package logger is a team's logging interface whose methods take only values (no
// format, no formatting sibling), and the adapter that writes them out.
package logger

import "log"

// Logger is what the team's code logs through.
type Logger interface {
	Info(args ...any)
	Error(args ...any)
}

// Std writes through the standard logger.
type Std struct{ l *log.Logger }

func (s *Std) Info(args ...any)  { s.l.Print(args...) } // want Info:"records"
func (s *Std) Error(args ...any) { s.l.Print(args...) } // want Error:"records"

// Nop discards everything (for tests): it does not take the recording away from Std.
type Nop struct{}

func (Nop) Info(args ...any)  {}
func (Nop) Error(args ...any) {}

// Tracker counts what it is handed and writes nothing: an interface of the same shape
// whose only implementation records nothing is not a logger.
type Tracker interface {
	Track(args ...any)
}

type counter struct{ n int }

func (c *counter) Track(args ...any) { c.n++ }

func NewTracker() Tracker { return &counter{} }

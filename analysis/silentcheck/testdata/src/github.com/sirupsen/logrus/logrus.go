// Package logrus is a stub of github.com/sirupsen/logrus.
package logrus

type Fields map[string]any

type Entry struct{}

func (e *Entry) WithField(k string, v any) *Entry { return e }
func (e *Entry) Error(args ...any)                {}
func (e *Entry) Errorf(f string, args ...any)     {}

type Logger struct{}

func (l *Logger) Warnf(f string, args ...any) {}

func WithError(err error) *Entry   { return &Entry{} }
func WithFields(f Fields) *Entry   { return &Entry{} }
func Warn(args ...any)             {}
func Tracef(f string, args ...any) {}

func WithField(k string, v any) *Entry { return &Entry{} }

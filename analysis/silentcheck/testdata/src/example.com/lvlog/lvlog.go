// Package lvlog is a logging library the rules do not list by name: package functions
// and Logger methods named for levels, each beside its formatting sibling.
package lvlog

import "io"

type Logger struct{ w io.Writer }

func (l *Logger) Warn(msg any, keyvals ...any)     { l.write(msg) }
func (l *Logger) Warnf(format string, args ...any) { l.write(format) }
func (l *Logger) write(v any)                      {}
func Error(msg any, keyvals ...any)                {}
func Errorf(format string, args ...any)            {}
func Info(msg any, keyvals ...any)                 {}
func Infof(format string, args ...any)             {}
func Default() *Logger                             { return &Logger{} }
func With(keyvals ...any) *Logger                  { return &Logger{} }
func Record(keyvals ...any)                        {}
func Recordf(format string, args ...any)           {}

// Structured is a logger with level methods taking a message and key-values, and one
// formatting method for all levels.
type Structured struct{}

func (*Structured) Warn(msg any, keyvals ...any)   {}
func (*Structured) Printf(format string, v ...any) {}
func (*Structured) Record(msg any, keyvals ...any) {}

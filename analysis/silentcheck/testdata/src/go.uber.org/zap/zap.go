// Package zap is a stub of go.uber.org/zap.
package zap

type Field struct{}

func Error(err error) Field { return Field{} }

type Logger struct{}

func (l *Logger) Warn(msg string, fields ...Field) {}
func (l *Logger) Sugar() *SugaredLogger            { return nil }

type SugaredLogger struct{}

func (s *SugaredLogger) Infow(msg string, kv ...any) {}

// Package plain has no message handling: early returns of nil are none of silentcheck's
// business here.
package plain

import (
	"errors"
	"os"
)

func load(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
	}
	return b, err
}

func validate(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 10 {
		return errors.New("too long")
	}
	return nil
}

// Message is a type that is not a broker message (no Ack, no /consumer package).
type Message struct{ Data []byte }

func handle(m *Message) error {
	if len(m.Data) == 0 {
		return nil
	}
	return nil
}

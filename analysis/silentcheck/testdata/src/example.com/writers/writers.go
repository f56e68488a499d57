// Package writers prints through an io.Writer it was handed: a report function given
// where to write (stdout in the program, a buffer in its test) leaves a trace there like
// a log line does. A print into a buffer in memory is only a string being built.
package writers

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats.go"
)

type job struct{ ID string }

func decode(b []byte) (job, error) { return job{ID: string(b)}, nil }

// The callback acks first and then reports what it read; a bad payload is printed to w.
func listen(w io.Writer, nc *nats.Conn) {
	nc.Subscribe("jobs", func(m *nats.Msg) {
		m.Ack()
		j, err := decode(m.Data)
		if err != nil {
			fmt.Fprintf(w, "decoding job: %v\n", err)
			return
		}
		fmt.Fprintln(w, "job", j.ID)
	})
}

// A print into a buffer nobody reads leaves no trace: the skip is silent.
func buffered(nc *nats.Conn) {
	var buf bytes.Buffer
	var sb strings.Builder
	nc.Subscribe("jobs", func(m *nats.Msg) {
		j, err := decode(m.Data)
		if err != nil {
			fmt.Fprintf(&buf, "decoding job: %v\n", err)
			m.Ack() // want `silent path: .*Ack`
			return
		}
		if j.ID == "" {
			fmt.Fprint(&sb, "no id")
			return // want `silent path: branch "if j.ID == \\"\\"" returns from a message handler`
		}
		m.Ack()
	})
}

// Package lvlogged logs through a logging library known by its family of level
// functions, not by its name.
package lvlogged

import (
	"encoding/json"

	"example.com/lvlog"
	"example.com/notlog"
	"github.com/nats-io/nats.go"
)

type event struct{ Kind string }

var structured = &lvlog.Structured{}

// decode logs every failure before handing it back: its callers' returns are explained.
func decode(name string, b []byte) (*event, error) { // want decode:"explains its empty answers or failures"
	var ev event
	if err := json.Unmarshal(b, &ev); err != nil {
		lvlog.Error(name, "error", err)
		return nil, err
	}
	return &ev, nil
}

func apply(ev *event) {}

func subscribe(nc *nats.Conn) {
	nc.Subscribe("events", func(m *nats.Msg) {
		ev, err := decode("events", m.Data)
		if err != nil {
			return
		}
		if ev.Kind == "" {
			lvlog.Infof("event without a kind on %s", m.Subject)
			return
		}
		if ev.Kind == "old" {
			lvlog.Default().Warn("old event", "subject", m.Subject)
			return
		}
		if ev.Kind == "late" {
			structured.Warn("late event", "subject", m.Subject)
			return
		}
		if ev.Kind == "skip" {
			notlog.Error("skip")
			return // want `silent path: branch "if ev.Kind == \\"skip\\"" returns from a message handler without settling the message`
		}
		if ev.Kind == "audit" {
			lvlog.Record("audit", m.Subject)
			return // want `silent path: branch "if ev.Kind == \\"audit\\"" returns from a message handler without settling the message`
		}
		if ev.Kind == "count" {
			structured.Record("count", m.Subject)
			return // want `silent path: branch "if ev.Kind == \\"count\\"" returns from a message handler without settling the message`
		}
		apply(ev)
	})
}

func slot(b []byte) error { return nil }

// err is given another error further down: the check right after decode still asks
// about decode's failure, which decode logged.
func subscribeReused(nc *nats.Conn) {
	nc.Subscribe("events", func(m *nats.Msg) {
		ev, err := decode("events", m.Data)
		if err != nil {
			return
		}
		err = slot(m.Data)
		if err != nil {
			lvlog.Error("bad slot", "error", err)
		}
		apply(ev)
	})
}

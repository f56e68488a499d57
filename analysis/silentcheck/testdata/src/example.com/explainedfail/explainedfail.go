// Package explainedfail tests a branch taken on a helper's failure that the helper
// already explained: every error it hands back comes after a log line. The caller that
// returns on that error leaves the decision on record. A helper that hands an error back
// without a word, or only sometimes with one, leaves the caller's branch to be judged.
package explainedfail

import (
	"errors"
	"fmt"
	"log"

	"github.com/nats-io/nats.go"
)

var errNoKind = errors.New("no kind")

type event struct{ id, kind string }

type db struct{}

func (db) exec(ev event) error { return nil }

type store struct {
	db    db
	count int
}

func decode(m *nats.Msg) event { return event{id: string(m.Data)} }

// apply logs every failure it hands back.
func (s *store) apply(ev event) error { // want apply:"explains its empty answers or failures"
	if err := s.db.exec(ev); err != nil {
		log.Printf("apply %s: %v", ev.id, err)
		return fmt.Errorf("apply: %w", err)
	}
	if ev.kind == "" {
		log.Print("event without a kind")
		return errNoKind
	}
	return nil
}

// save hands back what the database said, without a word.
func (s *store) save(ev event) error { return s.db.exec(ev) }

// check logs one failure and not the other.
func (s *store) check(ev event) error {
	if ev.id == "" {
		log.Print("event without an id")
		return errNoKind
	}
	if ev.kind == "test" {
		return errNoKind
	}
	return nil
}

// never fails: a stub explains nothing.
func (s *store) never(ev event) error { return nil }

func (s *store) onApplied(m *nats.Msg) {
	ev := decode(m)
	if err := s.apply(ev); err != nil {
		return
	}
	s.count++
}

func (s *store) onSaved(m *nats.Msg) {
	ev := decode(m)
	if err := s.save(ev); err != nil {
		return // want `silent path: branch "if err != nil" returns from a message handler without settling the message or recording a decision`
	}
	s.count++
}

func (s *store) onChecked(m *nats.Msg) {
	ev := decode(m)
	if err := s.check(ev); err != nil {
		return // want `silent path: branch "if err != nil" returns from a message handler without settling the message or recording a decision`
	}
	s.count++
}

func (s *store) onNever(m *nats.Msg) {
	ev := decode(m)
	if err := s.never(ev); err != nil {
		return // want `silent path: branch "if err != nil" returns from a message handler without settling the message or recording a decision`
	}
	s.count++
}

// onBoth reuses one error for an explained failure and an unexplained one: the branch on
// it is judged.
func (s *store) onBoth(m *nats.Msg) {
	ev := decode(m)
	err := s.apply(ev)
	if err == nil {
		err = s.save(ev)
	}
	if err != nil {
		return // want `silent path: branch "if err != nil" returns from a message handler without settling the message or recording a decision`
	}
	s.count++
}

// onAcked acks on the explained failure: the failure is on record, the ack is not silent.
func (s *store) onAcked(m *nats.Msg) {
	if err := s.apply(decode(m)); err != nil {
		m.Ack()
		return
	}
	m.Ack()
}

func (s *store) start(nc *nats.Conn) {
	nc.Subscribe("applied", s.onApplied)
	nc.Subscribe("saved", s.onSaved)
	nc.Subscribe("checked", s.onChecked)
	nc.Subscribe("never", s.onNever)
	nc.Subscribe("both", s.onBoth)
	nc.Subscribe("acked", s.onAcked)
}

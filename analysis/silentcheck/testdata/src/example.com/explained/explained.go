// Package explained tests a branch taken on a helper's empty answer (nil or false) that
// the helper already explained: every way it answers empty logs first. The caller's
// return carries out a decision that is on record. A helper that answers empty without
// a trace, or never does (a stub), leaves the caller's branch to be judged.
package explained

import (
	"log"

	"github.com/nats-io/nats.go"
)

type row struct{ cols []string }

type service struct{ strict bool }

// toRow logs every row it refuses.
func (s *service) toRow(m *nats.Msg) *row { // want toRow:"explains its empty answers or failures"
	if len(m.Data) == 0 {
		log.Printf("empty message on %s", m.Subject)
		return nil
	}
	r := row{cols: []string{string(m.Data)}}
	if s.strict && len(r.cols) > 1 {
		log.Printf("too many columns on %s", m.Subject)
		return nil
	}
	return &r
}

// accept logs before every refusal.
func accept(m *nats.Msg) bool { // want accept:"explains its empty answers or failures"
	if m.Header.Get("tenant") == "" {
		log.Print("no tenant")
		return false
	}
	return true
}

// parse answers nil for a short payload without a word.
func parse(m *nats.Msg) *row {
	if len(m.Data) < 4 {
		return nil
	}
	return &row{}
}

// valid is a stub that never refuses.
func valid(m *nats.Msg) bool { return true }

// mixed logs on one refusal and not on another.
func mixed(m *nats.Msg) *row {
	if m.Subject == "" {
		log.Print("no subject")
		return nil
	}
	if m.Reply == "" {
		return nil
	}
	return &row{}
}

func insert(r *row) error { return nil }

func (s *service) handle(m *nats.Msg) error {
	r := s.toRow(m)
	if r == nil {
		return nil
	}
	if !accept(m) {
		return nil
	}
	return insert(r)
}

func (s *service) handleParsed(m *nats.Msg) error {
	r := parse(m)
	if r == nil {
		return nil // want `silent path: branch "if r == nil" returns nil from a message handler without recording a decision`
	}
	if !valid(m) {
		return nil // want `silent path: branch "if !valid\(m\)" returns nil from a message handler without recording a decision`
	}
	if mixed(m) == nil {
		return nil // want `silent path: branch "if mixed\(m\) == nil" returns nil from a message handler without recording a decision`
	}
	return insert(r)
}

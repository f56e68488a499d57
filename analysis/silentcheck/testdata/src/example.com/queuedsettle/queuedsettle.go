// Package queuedsettle settles messages through a helper that queues the settlement: it
// keeps the state the message changed and appends a closure (or a method value) that
// settles the message to a list run when the state is flushed. A call to the helper is
// the settlement it queues, with the requeue flag the caller gives.
package queuedsettle

import (
	"iter"
	"log"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

type Message struct {
	Body     string
	Seq      int
	delivery amqp.Delivery
}

func (m *Message) Ack()              { m.delivery.Ack(false) }
func (m *Message) Nack(requeue bool) { m.delivery.Nack(false, requeue) }

type Queue struct{}

func (q *Queue) Messages() iter.Seq[Message] { return nil }

// Saver batches settlements until the state they depend on is written.
type Saver[T any] struct {
	last    int
	state   T
	pending []func()
}

func (s *Saver[T]) Done(m *Message, state T) error { // want Done:"settles Ack"
	if m.Seq <= s.last {
		log.Printf("message %d already saved", m.Seq)
		m.Ack()
		return nil
	}
	s.last, s.state = m.Seq, state
	s.pending = append(s.pending, m.Ack)
	return s.flush()
}

func (s *Saver[T]) Drop(m *Message, state T, requeue bool) { // want Drop:"settles Nack"
	s.last, s.state = m.Seq, state
	s.pending = append(s.pending, func() { m.Nack(requeue) })
}

func (s *Saver[T]) Discard(m *Message) { // want Discard:"settles Nack"
	s.pending = append(s.pending, func() { m.Nack(false) })
}

func (s *Saver[T]) flush() error {
	for _, f := range s.pending {
		f()
	}
	s.pending = nil
	return nil
}

// Only in a branch: not the helper's settlement.
func (s *Saver[T]) Maybe(m *Message, ok bool) {
	if ok {
		s.pending = append(s.pending, m.Ack)
	}
}

// A closure that does the work before settling is the work, not a queued settlement.
func (s *Saver[T]) Later(m *Message, out func(string)) {
	s.pending = append(s.pending, func() {
		out(m.Body)
		m.Ack()
	})
}

// Two different settlements: not one helper's.
func (s *Saver[T]) Either(m *Message) {
	s.pending = append(s.pending, m.Ack, func() { m.Nack(true) })
}

type Sum struct {
	in    *Queue
	total int
}

func (c *Sum) Run() {
	saver := &Saver[*Sum]{}
	for msg := range c.in.Messages() {
		n, err := strconv.Atoi(msg.Body)
		if err != nil {
			saver.Drop(&msg, c, false) // want `silent path: branch "if err != nil" settles the message \(saver.Drop, which settles msg with Nack without requeue\) without recording a decision`
			continue
		}
		if n < 0 {
			saver.Discard(&msg) // want `settles the message \(saver.Discard, which settles msg with Nack without requeue\)`
			continue
		}
		if n == 0 {
			saver.Done(&msg, c) // want `silent path: branch "if n == 0" settles the message \(saver.Done, which settles msg with Ack\) without recording a decision`
			continue
		}
		if n > 1000 {
			saver.Drop(&msg, c, true) // requeued: a retry
			continue
		}
		c.total += n
		if err := saver.Done(&msg, c); err != nil {
			log.Printf("save: %v", err)
		}
	}
}

// The same decisions, with a trace.
func (c *Sum) RunLogged() {
	saver := &Saver[*Sum]{}
	for msg := range c.in.Messages() {
		n, err := strconv.Atoi(msg.Body)
		if err != nil {
			log.Printf("not a number %q: %v", msg.Body, err)
			saver.Drop(&msg, c, false)
			continue
		}
		if n < 0 {
			log.Printf("negative: %d", n)
			saver.Discard(&msg)
			continue
		}
		if n == 0 {
			saver.Maybe(&msg, true)
			saver.Either(&msg)
			continue
		}
		saver.Later(&msg, func(string) {})
		c.total += n
		saver.Done(&msg, c)
	}
}

// A message handed to a handler that settles through the helper.
func (c *Sum) Start() {
	saver := &Saver[*Sum]{}
	for msg := range c.in.Messages() {
		c.handle(&msg, saver)
	}
}

func (c *Sum) handle(msg *Message, saver *Saver[*Sum]) {
	n, err := strconv.Atoi(msg.Body)
	if err != nil {
		saver.Drop(msg, c, false) // want `settles the message \(saver.Drop, which settles msg with Nack without requeue\)`
		return
	}
	c.total += n
	saver.Done(msg, c)
}

type rating struct {
	Item  string
	Score int
}

// Decode fills the rating in from a record's fields.
func (r *rating) Decode(fields []string) error {
	if len(fields) != 2 {
		return strconv.ErrSyntax
	}
	r.Item = fields[0]
	return nil
}

type Join struct {
	in     *Queue
	titles map[string]string
	out    func(string)
}

// A filter: a rating for an item not in the join set is acked through the helper with
// no trace (the if holds all the work, and only the settlement and the check of its
// error follow).
func (j *Join) Ratings() {
	saver := &Saver[*Join]{}
	for msg := range j.in.Messages() {
		var r rating
		if err := r.Decode(strings.Split(msg.Body, ",")); err != nil {
			log.Printf("bad rating %q: %v", msg.Body, err)
			saver.Drop(&msg, j, false)
			continue
		}
		if title, ok := j.titles[r.Item]; ok { // want `silent path: when "ok" is false the message is dropped without a trace`
			j.out(title + ":" + strconv.Itoa(r.Score))
		}
		err := saver.Done(&msg, j)
		if err != nil {
			log.Printf("save: %v", err)
		}
	}
}

// The same filter, saying so.
func (j *Join) RatingsLogged() {
	saver := &Saver[*Join]{}
	for msg := range j.in.Messages() {
		var r rating
		if err := r.Decode(strings.Split(msg.Body, ",")); err != nil {
			log.Printf("bad rating %q: %v", msg.Body, err)
			saver.Drop(&msg, j, false)
			continue
		}
		if title, ok := j.titles[r.Item]; ok {
			j.out(title + ":" + strconv.Itoa(r.Score))
		} else {
			log.Printf("no title for %s", r.Item)
		}
		err := saver.Done(&msg, j)
		if err != nil {
			log.Printf("save: %v", err)
		}
	}
}

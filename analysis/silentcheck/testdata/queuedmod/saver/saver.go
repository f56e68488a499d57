// Package saver queues settlements until the state they depend on is written: its
// helpers are followed from another package of the same module by a fact.
package saver

import "example.com/queuedmod/queue"

type Saver[T any] struct {
	state   T
	pending []func()
}

func (s *Saver[T]) Done(m *queue.Message, state T) { // want Done:"settles Ack"
	s.state = state
	s.pending = append(s.pending, m.Ack)
}

func (s *Saver[T]) Drop(m *queue.Message, state T, requeue bool) { // want Drop:"settles Nack"
	s.state = state
	s.pending = append(s.pending, func() { m.Nack(requeue) })
}

func (s *Saver[T]) Flush() {
	for _, f := range s.pending {
		f()
	}
	s.pending = nil
}

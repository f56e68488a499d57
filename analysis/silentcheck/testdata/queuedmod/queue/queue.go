// Package queue is a team's queue: its messages settle themselves (Ack, Nack with a
// requeue flag) and it hands them out as an iterator.
package queue

import "iter"

type Message struct {
	Body string
	Seq  int
}

func (m *Message) Ack()              {}
func (m *Message) Nack(requeue bool) {}

type Queue struct{}

func (q *Queue) Messages() iter.Seq[Message] { return nil }

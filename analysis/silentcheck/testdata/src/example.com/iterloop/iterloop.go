// Package iterloop consumes through a team's own queue type, whose methods hand out the
// broker's deliveries as an iterator (iter.Seq[Message], range over func) or a channel
// of the team's message wrapper. A loop over them is a loop over messages, wherever it
// is written: the function holding it receives no message itself.
package iterloop

import (
	"iter"
	"log"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

type Message struct {
	Body     string
	Final    bool
	delivery amqp.Delivery
}

func (m *Message) Ack()              { m.delivery.Ack(false) }
func (m *Message) Nack(requeue bool) { m.delivery.Nack(false, requeue) }

type Queue struct {
	deliveries <-chan amqp.Delivery
}

// Messages wraps each delivery; one that cannot be wrapped is logged and discarded.
func (q *Queue) Messages() iter.Seq[Message] {
	return func(yield func(Message) bool) {
		for d := range q.deliveries {
			if len(d.Body) == 0 {
				log.Printf("empty delivery %d", d.DeliveryTag)
				d.Nack(false, false)
				continue
			}
			if !yield(Message{Body: string(d.Body), delivery: d}) {
				return
			}
		}
	}
}

// Numbered hands out each message with its position (iter.Seq2).
func (q *Queue) Numbered() iter.Seq2[int, Message] {
	return func(yield func(int, Message) bool) {}
}

// Auto hands out messages the broker already acknowledged (auto-ack).
func (q *Queue) Auto() <-chan Message { return nil }

type Filter struct {
	in     *Queue
	out    func(string) error
	wanted map[string]bool
}

func parse(body string) ([]string, error) { return strings.Split(body, ","), nil }

func (f *Filter) Run() error {
	for msg := range f.in.Messages() {
		fields, err := parse(msg.Body)
		if err != nil {
			msg.Nack(false) // want `silent path: branch "if err != nil" settles the message \(msg.Nack without requeue\) without recording a decision`
			continue
		}
		if !f.wanted[fields[0]] {
			msg.Ack() // want `silent path: branch "if !f.wanted\[fields\[0\]\]" settles the message \(msg.Ack\) without recording a decision`
			continue
		}
		if err := f.out(msg.Body); err != nil {
			log.Printf("publish: %v", err)
			msg.Nack(true)
			continue
		}
		msg.Ack()
	}
	return nil
}

// Every skip leaves a trace, and a failure to publish is retried.
func (f *Filter) RunLogged() error {
	for _, msg := range f.in.Numbered() {
		fields, err := parse(msg.Body)
		if err != nil {
			log.Printf("unparsable %q: %v", msg.Body, err)
			msg.Nack(false)
			continue
		}
		if !f.wanted[fields[0]] {
			log.Printf("not wanted: %s", fields[0])
			msg.Ack()
			continue
		}
		if err := f.out(msg.Body); err != nil {
			msg.Nack(true)
			continue
		}
		msg.Ack()
	}
	return nil
}

// Nothing settles the auto-acknowledged messages: a skip drops one (rule 4).
func (f *Filter) RunAuto() {
	for msg := range f.in.Auto() {
		if msg.Body == "" {
			continue // want `silent path: branch "if msg.Body == \\"\\"" skips a message without a trace`
		}
		f.out(msg.Body) // want `silent failure: the error of f.out is thrown away`
	}
}

type Worker struct{ in *Queue }

// Each message is handed to handle, which is judged like the callback it is.
func (w *Worker) Start() {
	for msg := range w.in.Messages() {
		w.handle(&msg)
	}
}

func (w *Worker) handle(msg *Message) {
	if msg.Body == "" {
		msg.Nack(false) // want `silent path: branch "if msg.Body == \\"\\"" settles the message \(msg.Nack without requeue\)`
		return
	}
	msg.Ack()
}

// A range over a function that yields something else is no loop over messages.
func lines(s string) iter.Seq[string] {
	return func(yield func(string) bool) {}
}

func count(s string) int {
	n := 0
	for l := range lines(s) {
		if l == "" {
			continue
		}
		n++
	}
	return n
}

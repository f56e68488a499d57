// Package amqpish has an AMQP-style delivery (Ack, Nack, Reject): a message by its
// methods, whatever library it comes from.
package amqpish

type Delivery struct{ Body []byte }

func (d Delivery) Ack(multiple bool) error           { return nil }
func (d Delivery) Nack(multiple, requeue bool) error { return nil }
func (d Delivery) Reject(requeue bool) error         { return nil }

func consume(ch <-chan Delivery) {
	for d := range ch {
		if len(d.Body) == 0 {
			d.Reject(false) // want `silent path: branch "if len\(d.Body\) == 0" settles the message \(d.Reject without requeue\) without recording a decision`
			continue
		}
		d.Ack(false)
	}
}

// Package broker is a stand-in for a client whose messages are acknowledged by the
// handler: a delivery with Ack and Nack.
package broker

type Delivery struct {
	Body []byte
}

func (d *Delivery) Ack() error                { return nil }
func (d *Delivery) Nack(requeue bool) error   { return nil }
func (d *Delivery) Reject(requeue bool) error { return nil }
func Consume(queue string, h func(*Delivery)) {}

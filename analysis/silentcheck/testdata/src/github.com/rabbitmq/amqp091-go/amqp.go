// Package amqp091 is a stub of github.com/rabbitmq/amqp091-go with the shapes
// silentcheck looks at: a delivery settles itself (Ack, Nack, Reject); a channel's
// methods take the delivery tag.
package amqp091

type Table map[string]any

// Delivery is one message handed to a consumer.
type Delivery struct {
	Headers     Table
	Body        []byte
	DeliveryTag uint64
	Redelivered bool
}

func (d Delivery) Ack(multiple bool) error           { return nil }
func (d Delivery) Nack(multiple, requeue bool) error { return nil }
func (d Delivery) Reject(requeue bool) error         { return nil }

type Channel struct{}

func (ch *Channel) Consume(queue, consumer string, autoAck, exclusive, noLocal, noWait bool, args Table) (<-chan Delivery, error) {
	return nil, nil
}

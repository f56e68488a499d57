// Package implicitdefault tests the implicit default: a switch on what a record says,
// without a default, whose cases hold all the work, with only success after it. A value
// no case names is settled having done nothing.
package implicitdefault

import (
	"encoding/binary"
	"errors"
	"log"
)

// Record is a consumed Kafka record.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
}

type store struct{}

func (store) applyV1(v []byte) error { return nil }
func (store) applyV2(v []byte) error { return nil }
func (store) remember(k []byte)      {}

type consumer struct{ st store }

func version(key []byte) uint16 { return binary.BigEndian.Uint16(key) }

// An unknown version falls through to return nil.
func (c *consumer) handle(rec *Record) error {
	if len(rec.Key) < 2 {
		return errors.New("short key")
	}
	switch version(rec.Key) { // want `silent path: a value of "version\(rec.Key\)" that no case names is dropped without a trace \(the switch has no default\)`
	case 0, 1:
		if err := c.st.applyV1(rec.Value); err != nil {
			return err
		}
	case 2:
		if err := c.st.applyV2(rec.Value); err != nil {
			return err
		}
	}
	return nil
}

// With a default that says so, every value has its case.
func (c *consumer) handleLogged(rec *Record) error {
	switch version(rec.Key) {
	case 0, 1:
		return c.st.applyV1(rec.Value)
	case 2:
		return c.st.applyV2(rec.Value)
	default:
		log.Printf("unknown key version at offset %d", rec.Offset)
	}
	return nil
}

// Work done before the switch: what follows is an extra, not all the work.
func (c *consumer) handleAfterWork(rec *Record) error {
	c.st.remember(rec.Key)
	switch rec.Topic {
	case "audit":
		c.st.remember(rec.Value)
	}
	return nil
}

// A switch on something that is not the record decides nothing about it.
func (c *consumer) handleMode(rec *Record, mode int) error {
	switch mode {
	case 1:
		return c.st.applyV1(rec.Value)
	}
	return nil
}

// Events decoded from the record, told apart by their type.
type created struct{ id string }
type deleted struct{ id string }

func decode(v []byte) any { return created{id: string(v)} }

func (store) create(id string) error { return nil }
func (store) remove(id string) error { return nil }

// A type no case names falls through to return nil.
func (c *consumer) handleEvent(rec *Record) error {
	switch ev := decode(rec.Value).(type) { // want `silent path: a type of "decode\(rec.Value\)" that no case names is dropped without a trace \(the switch has no default\)`
	case created:
		return c.st.create(ev.id)
	case deleted:
		return c.st.remove(ev.id)
	}
	return nil
}

// A default that hands the unknown type back as an error.
func (c *consumer) handleEventStrict(rec *Record) error {
	switch ev := decode(rec.Value).(type) {
	case created:
		return c.st.create(ev.id)
	case deleted:
		return c.st.remove(ev.id)
	default:
		return errors.New("unknown event")
	}
}

// A type switch on something that is not the record decides nothing about it.
func (c *consumer) handleKind(rec *Record, kind any) error {
	switch kind.(type) {
	case created:
		return c.st.applyV1(rec.Value)
	}
	return nil
}

// Package offsetreturn handles a Kafka record in a function that returns the offset its
// caller commits (with the messages to produce, or a callback): returning msg.Offset + 1
// settles the record. A lookup that finds nothing for the record's key, with no else,
// skips it silently; the offset is committed all the same.
package offsetreturn

import (
	"log"

	"example.com/kafka"
)

type produced struct{ Value []byte }

type trigger struct{}

func (trigger) update(v []byte) ([]byte, error)       { return v, nil }
func (trigger) action(v []byte) func()                { return nil }
func (trigger) offset(partition int32, o int64) int64 { return o }

type sensor struct{ triggers map[string]trigger }

func (s *sensor) Trigger(msg *kafka.Record) ([]*produced, int64, func()) {
	messages := []*produced{}
	offset := msg.Offset + 1
	if t, ok := s.triggers[string(msg.Key)]; ok { // want `silent path: when "ok" is false the message is dropped without a trace`
		func() {
			v, err := t.update(msg.Value)
			if err != nil {
				log.Printf("update: %v", err)
				return
			}
			messages = append(messages, &produced{Value: v})
		}()
	}
	for _, t := range s.triggers {
		offset = t.offset(msg.Partition, offset)
	}
	return messages, offset, nil
}

func (s *sensor) Action(msg *kafka.Record) ([]*produced, int64, func()) {
	var f func()
	if t, ok := s.triggers[string(msg.Key)]; ok { // want `silent path: when "ok" is false the message is dropped without a trace`
		f = t.action(msg.Value)
	}
	return nil, msg.Offset + 1, f
}

// With an else that logs, the skip leaves a trace.
func (s *sensor) Logged(msg *kafka.Record) ([]*produced, int64, func()) {
	var f func()
	if t, ok := s.triggers[string(msg.Key)]; ok {
		f = t.action(msg.Value)
	} else {
		log.Printf("no trigger for key %q", msg.Key)
	}
	return nil, msg.Offset + 1, f
}

// Converting a record into a produced message and its offset is not handling it.
func convert(msg *kafka.Record) (*produced, int64, error) {
	if len(msg.Value) == 0 {
		return nil, 0, nil
	}
	return &produced{Value: msg.Value}, 0, nil
}

package envelope

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Type is one event type and its payload T: the name it travels under and the validation
// every consumer of it applies. Services declare their types in their own contract
// package:
//
//	var PaymentRequested = envelope.NewType("payment.requested", func(e envelope.Envelope, p Payment) error { ... })
//
// and consumers receive the decoded payload (consumer.Handle), so a handler never sees
// bytes or a payload that failed validation.
type Type[T any] struct {
	name     string
	validate func(Envelope, T) error
}

// NewType declares an event type. validate may be nil; it sees the decoded payload and the
// envelope (to check the key, say) and returns an *Invalid, or any error, which is then
// reported as ReasonBadField.
func NewType[T any](name string, validate func(Envelope, T) error) *Type[T] {
	if name == "" {
		panic("envelope: a type needs a name")
	}
	return &Type[T]{name: name, validate: validate}
}

// Name is the type's name, the envelope's "type".
func (t *Type[T]) Name() string { return t.name }

// Decode reads env's payload strictly and validates it. Its error is always an *Invalid.
func (t *Type[T]) Decode(env Envelope) (T, error) {
	var p T
	if env.Type != t.name {
		return p, Invalidf(ReasonUnknownType, "type %q, want %q", env.Type, t.name)
	}
	if err := Unmarshal(env.Data, &p); err != nil {
		return p, Invalidf(ReasonMalformed, "data: %v", err)
	}
	if t.validate != nil {
		if err := t.validate(env, p); err != nil {
			var inv *Invalid
			if errors.As(err, &inv) {
				return p, inv
			}
			return p, Invalidf(ReasonBadField, "%v", err)
		}
	}
	return p, nil
}

// New builds an event of this type about key, validated as a consumer would validate it:
// a producer cannot publish what its consumers will dead-letter.
func (t *Type[T]) New(key string, data T, now time.Time) (Envelope, []byte, error) {
	env, b, err := New(t.name, key, data, now)
	if err != nil {
		return env, nil, err
	}
	if _, err := t.Decode(env); err != nil {
		return env, nil, fmt.Errorf("event %s: %w", t.name, err)
	}
	return env, b, nil
}

// check validates env's payload without returning it (Registry).
func (t *Type[T]) check(env Envelope) error { _, err := t.Decode(env); return err }

// Kind is what a Registry holds: any Type, whatever its payload.
type Kind interface {
	Name() string
	check(Envelope) error
}

// Registry is a set of event types: a contract. It decodes any event of the set fully
// (envelope and payload) for tools that take every kind of event, such as a dead-letter
// inspector or a contract test.
type Registry struct {
	kinds map[string]Kind
}

// NewRegistry returns a registry of kinds. Two kinds with one name are a programming
// error.
func NewRegistry(kinds ...Kind) *Registry {
	r := &Registry{kinds: make(map[string]Kind, len(kinds))}
	for _, k := range kinds {
		if _, dup := r.kinds[k.Name()]; dup {
			panic("envelope: type " + k.Name() + " registered twice")
		}
		r.kinds[k.Name()] = k
	}
	return r
}

// Names lists the registered type names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.kinds))
	for n := range r.kinds {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Decode parses and validates one event of any registered type. Its error is always an
// *Invalid.
func (r *Registry) Decode(data []byte) (Envelope, error) {
	env, err := Decode(data)
	if err != nil {
		return env, err
	}
	k, ok := r.kinds[env.Type]
	if !ok {
		return env, Invalidf(ReasonUnknownType, "type %q", env.Type)
	}
	return env, k.check(env)
}

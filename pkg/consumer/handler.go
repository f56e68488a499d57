package consumer

import (
	"context"
	"errors"
	"fmt"

	"loudly/pkg/envelope"
)

// Handler decides the result of one message.
type Handler func(ctx context.Context, m *Message) Result

// Middleware wraps a handler with behaviour that is not the business's: fault injection,
// extra checks, extra span attributes. It may decide a message itself (return a Result
// without calling next) or change what next decided; either way the runner still settles
// and records exactly one result per message.
type Middleware func(next Handler) Handler

// Chain wraps h in middleware; the first one listed is the outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// TypedHandler decides one event of type T; it sees the payload decoded and validated.
type TypedHandler[T any] func(ctx context.Context, m *Message, payload T) Result

// Handle turns a typed handler into a Handler: the payload of events of type t is decoded
// strictly and validated by t, and an event of another type or with a payload t refuses is
// Invalid with the reason t gives, before h runs. Middleware given here runs between the
// two, so it sees only events the business would see.
func Handle[T any](t *envelope.Type[T], h TypedHandler[T], mws ...Middleware) Handler {
	return func(ctx context.Context, m *Message) Result {
		p, err := t.Decode(m.Event)
		if err != nil {
			return invalidFrom(err)
		}
		if len(mws) == 0 {
			return h(ctx, m, p)
		}
		return Chain(func(ctx context.Context, m *Message) Result { return h(ctx, m, p) }, mws...)(ctx, m)
	}
}

// Route is one event type and the handler of its events; see Routes.
type Route struct {
	Type    string
	Handler Handler
}

// On routes events of type t to h.
func On[T any](t *envelope.Type[T], h TypedHandler[T]) Route {
	return Route{Type: t.Name(), Handler: Handle(t, h)}
}

// Routes dispatches on the event's type to one of routes; an event of any other type is
// Invalid (unknown_type), never ignored.
func Routes(routes ...Route) Handler {
	byType := make(map[string]Handler, len(routes))
	for _, r := range routes {
		byType[r.Type] = r.Handler
	}
	return func(ctx context.Context, m *Message) Result {
		h, ok := byType[m.Event.Type]
		if !ok {
			return Invalid(envelope.ReasonUnknownType, fmt.Errorf("no handler for event type %q on this consumer", m.Event.Type))
		}
		return h(ctx, m)
	}
}

// invalidFrom turns a decoding error into an Invalid result with its reason.
func invalidFrom(err error) Result {
	var inv *envelope.Invalid
	if errors.As(err, &inv) {
		return Invalid(inv.Reason, err)
	}
	return Invalid(envelope.ReasonMalformed, err)
}

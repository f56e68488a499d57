package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

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

// Item is one message of a batch with its payload, decoded and validated.
type Item[T any] struct {
	*Message
	Payload T
}

// TypedBatchHandler decides a batch of events of one type, in stream order: one Result
// per item, in the items' order, or an error when the batch failed as a whole and nothing
// it did took effect (see BatchHandler).
type TypedBatchHandler[T any] func(ctx context.Context, items []Item[T]) ([]Result, error)

// HandleBatch turns a typed batch handler into a BatchHandler. Events of another type, or
// with a payload t refuses, are decided Invalid at once, alone. Middleware runs around
// each message as it would around a Handler — it may decide a message itself, or look at
// what the batch decided for it — and the messages whose middleware called next are
// decided together by h, in one call. Middleware must call next at most once.
func HandleBatch[T any](t *envelope.Type[T], h TypedBatchHandler[T], mws ...Middleware) BatchHandler {
	return HandleBatchOf([]*envelope.Type[T]{t}, h, mws...)
}

// HandleBatchOf is HandleBatch for several event types with one payload type (say, the
// accepted and the refused answer to a request): a batch mixes them, in stream order, and
// h tells them apart by Item.Event.Type.
func HandleBatchOf[T any](types []*envelope.Type[T], h TypedBatchHandler[T], mws ...Middleware) BatchHandler {
	byName := make(map[string]*envelope.Type[T], len(types))
	for _, t := range types {
		byName[t.Name()] = t
	}
	return func(ctx context.Context, msgs []*Message, decide func(int, Result)) error {
		var items []Item[T]
		var index []int
		for i, m := range msgs {
			t, ok := byName[m.Event.Type]
			if !ok {
				decide(i, Invalid(envelope.ReasonUnknownType, fmt.Errorf("no handler for event type %q on this consumer", m.Event.Type)))
				continue
			}
			p, err := t.Decode(m.Event)
			if err != nil {
				decide(i, invalidFrom(err))
				continue
			}
			items = append(items, Item[T]{Message: m, Payload: p})
			index = append(index, i)
		}
		if len(items) == 0 {
			//silentcheck:ok every message of the batch was decided above (decide), and the runner records each
			return nil
		}
		if len(mws) == 0 {
			res, err := h(ctx, items)
			if err != nil {
				return err
			}
			if len(res) != len(items) {
				return fmt.Errorf("batch handler returned %d results for %d items", len(res), len(items))
			}
			for j, r := range res {
				decide(index[j], r)
			}
			return nil
		}
		return gatherThrough(ctx, items, index, h, mws, decide)
	}
}

// gatherThrough runs each item's middleware chain in a goroutine of its own. The innermost
// handler of every chain waits until each chain has either reached it or decided without
// it; then h decides the items that reached it, in one call, and each chain resumes with
// its own result. A failed batch leaves those items undecided, for the runner to decide
// again one by one.
func gatherThrough[T any](ctx context.Context, items []Item[T], index []int, h TypedBatchHandler[T], mws []Middleware, decide func(int, Result)) error {
	var (
		mu        sync.Mutex
		joined    []int // positions in items that reached the handler
		remaining = len(items)
		arrived   = make(chan struct{}) // closed when every chain has joined or decided
		done      = make(chan struct{}) // closed when the batch has been decided
		results   = make([]Result, len(items))
		failed    bool
		batchErr  error
	)
	arrive := func() {
		mu.Lock()
		defer mu.Unlock()
		if remaining--; remaining == 0 {
			close(arrived)
		}
	}
	var wg sync.WaitGroup
	for j, it := range items {
		wg.Go(func() {
			reached := false
			defer func() {
				if !reached {
					arrive()
				}
				if p := recover(); p != nil {
					decide(index[j], Retry("panic", fmt.Errorf("middleware panicked: %v", p)))
				}
			}()
			inner := func(context.Context, *Message) Result {
				mu.Lock()
				joined = append(joined, j)
				mu.Unlock()
				reached = true
				arrive()
				<-done
				return results[j]
			}
			res := Chain(inner, mws...)(it.Context(), it.Message)
			if reached && failed {
				return // the batch failed: the runner decides this message again
			}
			decide(index[j], res)
		})
	}
	<-arrived
	func() {
		defer close(done)
		mu.Lock()
		slices.Sort(joined) // stream order
		batch := make([]Item[T], len(joined))
		for k, j := range joined {
			batch[k] = items[j]
		}
		mu.Unlock()
		if len(batch) == 0 {
			return
		}
		res, err := callTyped(ctx, h, batch)
		if err == nil && len(res) != len(batch) {
			err = fmt.Errorf("batch handler returned %d results for %d items", len(res), len(batch))
		}
		if err != nil {
			failed, batchErr = true, err
			return
		}
		for k, j := range joined {
			results[j] = res[k]
		}
	}()
	wg.Wait()
	return batchErr
}

// callTyped runs h, turning a panic into a failed batch so that every chain waiting for it
// resumes.
func callTyped[T any](ctx context.Context, h TypedBatchHandler[T], items []Item[T]) (res []Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errBatchPanic, p)
		}
	}()
	return h(ctx, items)
}

// BatchRoute is the batch handler of the event types of one payload type, for
// RouteBatches.
type BatchRoute struct {
	types   []string
	handler BatchHandler
}

// OnBatch routes the events of types (one payload type T) to h, decided as HandleBatchOf
// decides them, middleware included.
func OnBatch[T any](types []*envelope.Type[T], h TypedBatchHandler[T], mws ...Middleware) BatchRoute {
	r := BatchRoute{handler: HandleBatchOf(types, h, mws...)}
	for _, t := range types {
		r.types = append(r.types, t.Name())
	}
	return r
}

// RouteBatches decides a batch that mixes event types of different payloads (a consumer
// whose filter is a wildcard): each route decides its own events, in stream order, in one
// call of its own (one transaction), one route after another. An event of any other type
// is Invalid (unknown_type), never ignored. A route that fails as a whole fails the batch
// there: the messages it and the routes after it left undecided are decided again one by
// one, and those decided before stay decided.
func RouteBatches(routes ...BatchRoute) BatchHandler {
	byType := map[string]int{}
	for i, r := range routes {
		for _, t := range r.types {
			byType[t] = i
		}
	}
	return func(ctx context.Context, msgs []*Message, decide func(int, Result)) error {
		parts := make([][]int, len(routes)) // per route, the positions of its messages
		for i, m := range msgs {
			r, ok := byType[m.Event.Type]
			if !ok {
				decide(i, Invalid(envelope.ReasonUnknownType, fmt.Errorf("no handler for event type %q on this consumer", m.Event.Type)))
				continue
			}
			parts[r] = append(parts[r], i)
		}
		for r, part := range parts {
			if len(part) == 0 {
				continue
			}
			sub := make([]*Message, len(part))
			for k, i := range part {
				sub[k] = msgs[i]
			}
			if err := routes[r].handler(ctx, sub, func(k int, res Result) {
				if k >= 0 && k < len(part) {
					decide(part[k], res)
				}
			}); err != nil {
				return err
			}
		}
		//silentcheck:ok every message was decided above (decide), by its route or as unknown_type, and the runner records each
		return nil
	}
}

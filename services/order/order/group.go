package order

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/outbox"
	"loudly/pkg/telemetry"
)

// Accepts are committed in groups: requests that arrive while every committer is busy wait
// together, and the next free committer writes all of them (up to maxGroup) in one
// transaction — one round trip and one WAL flush for the group instead of one per order.
// A request that finds a committer free is committed at once, alone, so a quiet service
// adds no latency. PostgreSQL group-commits concurrent transactions' WAL flushes too, but
// each transaction still costs its own statements, round trip and commit record; under
// load most of the accept's cost is that per-transaction part.
//
// One committer works alone until a full group (maxGroup) is waiting; only then may more
// (up to the service's AcceptCommitters) commit groups beside it. Below saturation every
// request that arrives while the one commit is under way joins the next group, so the
// accepts of a moderate rate share transactions; above it the committers work in parallel.
// Side by side at 1,000 orders/s on 2 cores (2026-12-06, four pairs) against four
// committers that all commit whenever free: PostgreSQL 0.53–0.69 transactions per order
// instead of 0.75–0.94, p99 accept→settled 69–105 ms instead of 116–154. A single
// committer with nothing beside it had capped accepts about 10% lower at saturation:
// hence one, then more.
//
// A group that fails (an idempotency key already taken, or used twice in the group, a lost
// connection) commits nothing, and each of its requests is then committed alone, with the
// idempotency handling of create: one bad request never fails its neighbours.
type grouper struct {
	s     *store
	tel   *telemetry.Telemetry
	first chan struct{} // the one committer that may always commit
	more  chan struct{} // the others, taken only while a full group waits; nil if none

	mu    sync.Mutex
	queue []*acceptReq
}

// maxGroup bounds a group: the statements' arrays, and the time its first request waits
// for the last one's rows.
const maxGroup = 64

// DefaultAcceptCommitters is how many groups may be committed at once unless
// ACCEPT_COMMITTERS says otherwise (Config.AcceptCommitters). Requests queue while the
// committers are busy, and that queue is what forms the groups.
const DefaultAcceptCommitters = 4

type acceptReq struct {
	ctx      context.Context
	o        Order
	key      string
	hash     []byte
	response json.RawMessage
	taken    bool            // in a group being committed (guarded by grouper.mu)
	done     chan acceptDone // one answer
}

type acceptDone struct {
	res   placed
	err   error
	alone bool // the group failed: commit this request on its own
}

// newGrouper commits with up to committers at once (DefaultAcceptCommitters if < 1).
func newGrouper(s *store, tel *telemetry.Telemetry, committers int) *grouper {
	if committers < 1 {
		committers = DefaultAcceptCommitters
	}
	g := &grouper{s: s, tel: tel, first: make(chan struct{}, 1)}
	if committers > 1 {
		g.more = make(chan struct{}, committers-1)
	}
	return g
}

// create stores a new order as store.create does, committed in a group with whatever other
// accepts are waiting.
func (g *grouper) create(ctx context.Context, o Order, idemKey string, reqHash []byte, response json.RawMessage) (placed, error) {
	req := &acceptReq{ctx: ctx, o: o, key: idemKey, hash: reqHash, response: response, done: make(chan acceptDone, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, req)
	g.mu.Unlock()
	for {
		g.mu.Lock()
		taken := req.taken
		more := g.more // nil (never ready) unless a full group waits
		if len(g.queue) < maxGroup {
			more = nil
		}
		g.mu.Unlock()
		var d acceptDone
		if taken {
			d = <-req.done
		} else {
			select {
			case d = <-req.done:
			case g.first <- struct{}{}:
				g.commitWith(g.first)
				continue // this request was in the group, or is still queued behind it
			case more <- struct{}{}:
				g.commitWith(more)
				continue
			}
		}
		if d.alone {
			return g.s.create(ctx, o, idemKey, reqHash, response)
		}
		return d.res, d.err
	}
}

// commitWith commits the next group holding the committer slot just taken from slot.
func (g *grouper) commitWith(slot chan struct{}) {
	defer func() { <-slot }()
	g.commitNext()
}

// commitNext takes up to maxGroup queued requests and commits them.
func (g *grouper) commitNext() {
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	group := make([]*acceptReq, n)
	copy(group, g.queue)
	for _, r := range group {
		r.taken = true
	}
	g.queue = append(g.queue[:0], g.queue[n:]...)
	g.mu.Unlock()
	// Every request of the group gets one answer, even if committing panics: the others
	// wait on it (done holds one answer, so a second send is dropped).
	defer func() {
		if p := recover(); p != nil {
			for _, r := range group {
				select {
				case r.done <- acceptDone{err: fmt.Errorf("accept group: %v", p)}:
				default: // answered before the panic
				}
			}
			panic(p)
		}
	}()
	switch len(group) {
	case 0:
	case 1:
		r := group[0]
		res, err := g.s.create(r.ctx, r.o, r.key, r.hash, r.response)
		r.done <- acceptDone{res: res, err: err}
	default:
		err := g.s.createGroup(group)
		if err != nil {
			// A branch like any other: the group's failure, and that its requests are
			// decided again one by one, each of which records its own decision.
			g.tel.Decisions.Record(group[0].ctx, telemetry.Decision{
				Stage: telemetry.StageBatch, Outcome: telemetry.Retry, Reason: "accept_group_failed", EventType: "POST /v1/orders", Err: err,
				Attrs: []slog.Attr{slog.Int("requests", len(group))},
			})
		}
		for _, r := range group {
			trace.SpanFromContext(r.ctx).SetAttributes(attribute.Int("loudly.accept.group", len(group)))
			if err != nil {
				r.done <- acceptDone{alone: true}
				continue
			}
			o := r.o
			o.Status = StatusPending // as create answers
			r.done <- acceptDone{res: placed{order: o, response: r.response}}
		}
	}
}

// createGroup writes every order of group, its history row, its event and its idempotency
// key (when it has one) in one pipelined batch: all of them, or, on any error, none.
func (s *store) createGroup(group []*acceptReq) error {
	n := len(group)
	ids, customers, traces := make([]string, n), make([]string, n), make([]string, n)
	lines := make([][]byte, n)
	eventIDs := make([]string, n)
	var keys, keyOrders []string
	var hashes, responses [][]byte
	msgs := make([]outbox.Message, n)
	for i, r := range group {
		lb, event, err := newOrderRows(r.o)
		if err != nil {
			return err
		}
		ids[i], customers[i], traces[i], lines[i], eventIDs[i], msgs[i] = r.o.ID, r.o.CustomerID, r.o.TraceID, lb, event.EventID, event
		if r.key != "" {
			keys, keyOrders = append(keys, r.key), append(keyOrders, r.o.ID)
			hashes, responses = append(hashes, r.hash), append(responses, []byte(r.response))
		}
	}
	// The group's statements run in the context of its first request (its trace holds the
	// batch's span); each event carries the trace of the request it answers.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(group[0].ctx), 30*time.Second)
	defer cancel()
	b := &pgx.Batch{}
	if len(keys) > 0 {
		b.Queue(`INSERT INTO orders.idempotency_keys (key, request_hash, order_id, response)
			SELECT * FROM unnest($1::text[], $2::bytea[], $3::uuid[], $4::bytea[])`, keys, hashes, keyOrders, responses)
	}
	b.Queue(`INSERT INTO orders.orders (id, customer_id, lines, status, trace_id)
		SELECT i, c, l, 'pending', t FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::text[]) AS u(i, c, l, t)`,
		ids, customers, lines, traces)
	b.Queue(`INSERT INTO orders.order_history (order_id, status, event_id)
		SELECT i, 'pending', e FROM unnest($1::uuid[], $2::uuid[]) AS u(i, e)`, ids, eventIDs)
	if err := s.outbox.Queue(ctx, b, msgs, func(i int) context.Context { return group[i].ctx }); err != nil {
		return err
	}
	if err := sendAll(ctx, s.pool, b); err != nil {
		return err
	}
	s.outbox.Notify()
	return nil
}

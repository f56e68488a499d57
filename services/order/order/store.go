package order

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/pkg/idempotency"
	"loudly/pkg/outbox"
	"loudly/pkg/postgres"
	"loudly/services/events"
)

// Order statuses.
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
	StatusRejected  = "rejected"
	StatusFailed    = "failed"
)

// Order is an order as the API shows it.
type Order struct {
	ID         string         `json:"id"`
	CustomerID string         `json:"customer_id"`
	Lines      []events.Line  `json:"lines"`
	Status     string         `json:"status"`
	Reason     string         `json:"reason,omitempty"`
	TraceID    string         `json:"trace_id,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	SettledAt  *time.Time     `json:"settled_at,omitempty"`
	History    []HistoryEntry `json:"history,omitempty"`
	Events     []outbox.Entry `json:"events,omitempty"` // this order's events in the order outbox
}

// OrderStatus is an order without its lines, history and events: what
// POST /v1/orders:batchGet answers for each order.
type OrderStatus struct {
	ID        string     `json:"id"`
	Status    string     `json:"status"`
	Reason    string     `json:"reason,omitempty"`
	TraceID   string     `json:"trace_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	SettledAt *time.Time `json:"settled_at,omitempty"`
}

// HistoryEntry is one status an order had.
type HistoryEntry struct {
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	EventID string    `json:"event_id,omitempty"`
	At      time.Time `json:"at"`
}

// store is the order service's PostgreSQL state, all in schema "orders".
type store struct {
	pool      *pgxpool.Pool
	outbox    *outbox.Outbox
	processed *idempotency.Table // the events the settlement applied (orders.processed_events)
}

var (
	errIdempotencyConflict = errors.New("idempotency key reused with a different request")
	errUnknownOrder        = errors.New("no such order")
)

// placed is what create returns: the order and the response first given for it.
type placed struct {
	order    Order
	response json.RawMessage
	replayed bool
}

// create stores a new pending order, its first history row and its order.placed event
// in one transaction, and answers with response. With an idempotency key, a replay of the
// same request returns the first response, and a different request under the same key
// fails with errIdempotencyConflict.
//
// The transaction is one pipelined batch: one round trip to PostgreSQL instead of a
// BEGIN, a COMMIT and one per statement. pgx sends the statements with a single Sync, so
// PostgreSQL runs them as one implicit transaction: it commits at the Sync if every
// statement succeeded and rolls all of them back if any failed. That is why the key is
// inserted plainly (no ON CONFLICT) and with the response already in it: a key already
// taken fails the first statement, nothing of the batch remains, and create reads the
// stored answer instead. A concurrent request with the same key waits on the key's row
// until the first one's batch ends; if that one rolled back, the key is free again and
// the second request is accepted instead.
func (s *store) create(ctx context.Context, o Order, idemKey string, reqHash []byte, response json.RawMessage) (placed, error) {
	lines, event, err := newOrderRows(o)
	if err != nil {
		return placed{}, err
	}
	b := &pgx.Batch{}
	if idemKey != "" {
		b.Queue(`INSERT INTO orders.idempotency_keys (key, request_hash, order_id, response) VALUES ($1, $2, $3, $4)`,
			idemKey, reqHash, o.ID, []byte(response))
	}
	b.Queue(`INSERT INTO orders.orders (id, customer_id, lines, status, trace_id) VALUES ($1, $2, $3, 'pending', $4)`,
		o.ID, o.CustomerID, lines, o.TraceID)
	b.Queue(`INSERT INTO orders.order_history (order_id, status, event_id) VALUES ($1, 'pending', $2)`, o.ID, event.EventID)
	if err := s.outbox.Queue(ctx, b, []outbox.Message{event}, nil); err != nil {
		return placed{}, err
	}
	// Twice at most: a key whose holder rolled back between our failed insert and our
	// read is free again, and the second attempt takes it.
	for attempt := 0; ; attempt++ {
		err := sendAll(ctx, s.pool, b)
		if err == nil {
			s.outbox.Notify()
			o.Status = StatusPending
			return placed{order: o, response: response}, nil
		}
		if idemKey == "" || !isUniqueViolation(err, "idempotency_keys") {
			return placed{}, fmt.Errorf("insert order: %w", err)
		}
		var hash []byte
		var resp json.RawMessage
		var orderID string
		err = s.pool.QueryRow(ctx, `SELECT request_hash, response, order_id::text FROM orders.idempotency_keys WHERE key = $1`,
			idemKey).Scan(&hash, &resp, &orderID)
		switch {
		case errors.Is(err, pgx.ErrNoRows) && attempt == 0:
			continue
		case err != nil:
			return placed{}, fmt.Errorf("idempotency key: %w", err)
		case !bytes.Equal(hash, reqHash):
			return placed{}, errIdempotencyConflict
		}
		return placed{order: Order{ID: orderID}, response: resp, replayed: true}, nil
	}
}

// newOrderRows is what a new order writes besides its idempotency key: its lines as
// stored, and its order.placed event for the outbox.
func newOrderRows(o Order) (lines []byte, event outbox.Message, err error) {
	if lines, err = json.Marshal(o.Lines); err != nil {
		return nil, event, err
	}
	env, payload, err := events.OrderPlacedEvent.New(o.ID, events.OrderPlaced{CustomerID: o.CustomerID, Lines: o.Lines}, time.Now())
	if err != nil {
		return nil, event, err
	}
	return lines, outbox.Message{EventID: env.ID, Subject: events.SubjectOrderPlaced, Payload: payload}, nil
}

// sendAll runs b's statements as one pipelined batch and returns the first error: with
// it, none of them took effect (see create).
func sendAll(ctx context.Context, pool *pgxpool.Pool, b *pgx.Batch) error {
	br := pool.SendBatch(ctx, b)
	var first error
	for range b.Len() {
		if _, err := br.Exec(); err != nil && first == nil {
			first = err
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// uniqueViolation is PostgreSQL's SQLSTATE unique_violation (Appendix A, class 23).
const uniqueViolation = "23505"

// isUniqueViolation reports whether err is a unique_violation on orders.<table>.
func isUniqueViolation(err error, table string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == uniqueViolation && pgErr.SchemaName == "orders" && pgErr.TableName == table
}

// get returns an order with its history.
// statuses reads the orders with these ids (canonical UUIDs) in one query; ids that are
// not orders are left out.
func (s *store) statuses(ctx context.Context, ids []string) ([]OrderStatus, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text, status, coalesce(reason, ''), coalesce(trace_id, ''), created_at, updated_at, settled_at
		FROM orders.orders WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrderStatus, error) {
		var o OrderStatus
		return o, r.Scan(&o.ID, &o.Status, &o.Reason, &o.TraceID, &o.CreatedAt, &o.UpdatedAt, &o.SettledAt)
	})
}

func (s *store) get(ctx context.Context, id string) (Order, error) {
	var o Order
	var lines []byte
	var reason, traceID *string
	err := s.pool.QueryRow(ctx, `SELECT id::text, customer_id, lines, status, reason, trace_id, created_at, updated_at, settled_at
		FROM orders.orders WHERE id = $1`, id).
		Scan(&o.ID, &o.CustomerID, &lines, &o.Status, &reason, &traceID, &o.CreatedAt, &o.UpdatedAt, &o.SettledAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return o, errUnknownOrder
	}
	if err != nil {
		return o, err
	}
	o.Reason, o.TraceID = deref(reason), deref(traceID)
	if err := json.Unmarshal(lines, &o.Lines); err != nil {
		return o, err
	}
	rows, err := s.pool.Query(ctx, `SELECT status, coalesce(reason, ''), coalesce(event_id::text, ''), at
		FROM orders.order_history WHERE order_id = $1 ORDER BY id`, id)
	if err != nil {
		return o, err
	}
	o.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (HistoryEntry, error) {
		var h HistoryEntry
		return h, r.Scan(&h.Status, &h.Reason, &h.EventID, &h.At)
	})
	if err != nil {
		return o, err
	}
	// The history names every event of the order; those this service produced are in its outbox.
	var ids []string
	for _, h := range o.History {
		if h.EventID != "" {
			ids = append(ids, h.EventID)
		}
	}
	entries, err := s.outbox.Entries(ctx, ids)
	for _, id := range ids {
		if e, ok := entries[id]; ok {
			o.Events = append(o.Events, e)
		}
	}
	return o, err
}

// settlement is what settle did.
type settlement struct {
	duplicate bool          // the event was applied before, or its order was already final
	final     bool          // (with duplicate) a new event for an order already final
	unknown   bool          // no such order: the result answers an order this service never took
	age       time.Duration // order creation to this settlement
}

// settleRequest is one result event to apply.
type settleRequest struct {
	eventID, orderID, status, reason string
}

// settle applies a batch of result events, in stream order, in one transaction: it claims
// every event id in the service's record of processed events (pkg/idempotency), moves
// each order to its final status — the first new result for an order wins, and a failed
// order (its event was dead-lettered) can still be settled by a late result — and writes
// each order's history. An event for an unknown order is reported, and its claim
// forgotten, so a redriven copy is judged again. Any error leaves nothing behind.
//
// Two round trips, each a pipelined batch (postgres.Begin, then Commit): BEGIN, the claim
// and the orders locked and read; then the updates, the history and COMMIT. The decisions
// between them are made here, in Go, from what the first one read. Concurrent batches
// with the same event are ordered by the claim, which waits for the other's commit and
// then finds the event seen; batches settling the same order wait on its row lock.
func (s *store) settle(ctx context.Context, reqs []settleRequest) ([]settlement, error) {
	events := make([]idempotency.Event, len(reqs))
	var orderIDs []string
	for i, r := range reqs {
		events[i] = idempotency.Event{ID: r.eventID, Key: r.orderID}
		if _, err := uuid.Parse(r.orderID); err == nil {
			orderIDs = append(orderIDs, r.orderID)
		}
	}
	slices.Sort(orderIDs) // locked in id order, so concurrent batches cannot deadlock
	orderIDs = slices.Compact(orderIDs)

	first := &pgx.Batch{}
	// The lookups join the batch's arrays against orders and the record, which grow: they
	// are planned to probe the indexes (postgres.IndexPlans), where a cached plan made on
	// the first small tables scanned the whole table.
	postgres.IndexPlans(first)
	claim := s.processed.Claim(first, events)
	if err := claim.Err(); err != nil {
		return nil, err
	}
	known := make(map[string]orderState, len(orderIDs))
	first.Queue(lockOrdersSQL, orderIDs).Query(func(rows pgx.Rows) error {
		var id string
		var o orderState
		_, err := pgx.ForEachRow(rows, []any{&id, &o.status, &o.createdAt}, func() error { known[id] = o; return nil })
		return err
	})
	tx, err := postgres.Begin(ctx, s.pool, first)
	if err != nil {
		return nil, err
	}
	defer tx.Close()

	out := make([]settlement, len(reqs))
	var unknown []int
	var ids, statuses, reasons, eventIDs []string
	for i, r := range reqs {
		o, ok := known[canonicalUUID(r.orderID)]
		switch {
		case !ok:
			out[i].unknown = true
			unknown = append(unknown, i)
		case claim.Seen(i):
			out[i].duplicate = true
		case o.status != StatusPending && o.status != StatusFailed:
			out[i].duplicate, out[i].final = true, true // settled before, or earlier in this batch
		default:
			out[i].age = time.Since(o.createdAt)
			o.status = r.status
			known[canonicalUUID(r.orderID)] = o
			ids, statuses, reasons, eventIDs = append(ids, r.orderID), append(statuses, r.status), append(reasons, r.reason), append(eventIDs, r.eventID)
		}
	}
	last := &pgx.Batch{}
	claim.Forget(last, unknown...)
	if len(ids) > 0 {
		last.Queue(settleOrdersSQL, ids, statuses, reasons)
		last.Queue(`INSERT INTO orders.order_history (order_id, status, reason, event_id)
			SELECT o, st, nullif(rs, ''), e FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[]) AS t(o, st, rs, e)`,
			ids, statuses, reasons, eventIDs)
	}
	if err := tx.Commit(ctx, last); err != nil {
		return nil, err
	}
	return out, nil
}

// orderState is what settle reads of an order before deciding.
type orderState struct {
	status    string
	createdAt time.Time
}

// The statements of settle that look the batch's orders up by key, each planned to probe
// an index whatever the table's size (postgres.IndexPlans).
const (
	// lockOrdersSQL locks and reads the orders $1, in id order.
	lockOrdersSQL = `SELECT id::text, status, created_at FROM orders.orders WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`
	// settleOrdersSQL gives order $1[i] its final status $2[i] and reason $3[i].
	settleOrdersSQL = `UPDATE orders.orders AS x SET status = t.st, reason = nullif(t.rs, ''), settled_at = now(), updated_at = now()
		FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(o, st, rs) WHERE x.id = t.o`
)

// canonicalUUID is id as PostgreSQL prints a uuid, or id itself when it is not one.
func canonicalUUID(id string) string {
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return id
}

// fail marks a pending order failed; it reports false when the order was not pending,
// and errUnknownOrder when there is no such order.
func (s *store) fail(ctx context.Context, orderID, reason string) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.Background())
	tag, err := tx.Exec(ctx, `UPDATE orders.orders SET status = 'failed', reason = $2, updated_at = now(), settled_at = now()
		WHERE id = $1 AND status = 'pending'`, orderID, reason)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM orders.orders WHERE id = $1)`, orderID).Scan(&exists); err != nil {
			return false, err
		}
		if !exists {
			return false, errUnknownOrder
		}
		return false, nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO orders.order_history (order_id, status, reason) VALUES ($1, 'failed', $2)`, orderID, reason); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// unsettled counts orders pending longer than deadline and the age of the oldest.
func (s *store) unsettled(ctx context.Context, deadline time.Duration) (n int64, oldest time.Duration, oldestID string, err error) {
	var age float64
	var id *string
	err = s.pool.QueryRow(ctx, `SELECT count(*),
			coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8,
			(SELECT id::text FROM orders.orders WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1) ORDER BY created_at LIMIT 1)
		FROM orders.orders WHERE status = 'pending' AND created_at < now() - make_interval(secs => $1)`,
		deadline.Seconds()).Scan(&n, &age, &id)
	return n, time.Duration(age * float64(time.Second)), deref(id), err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

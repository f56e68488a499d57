package order

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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

// HistoryEntry is one status an order had.
type HistoryEntry struct {
	Status  string    `json:"status"`
	Reason  string    `json:"reason,omitempty"`
	EventID string    `json:"event_id,omitempty"`
	At      time.Time `json:"at"`
}

// store is the order service's PostgreSQL state, all in schema "orders".
type store struct {
	pool   *pgxpool.Pool
	outbox *outbox.Outbox
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
	duplicate bool          // the event was applied before, or the order was already settled
	unknown   bool          // no such order: the result answers an order this service never took
	age       time.Duration // order creation to this settlement
}

// settleRequest is one result event to apply.
type settleRequest struct {
	eventID, orderID, status, reason string
}

// settle applies a batch of result events, in stream order, atomically: it records every
// event id, moves each order to its final status (the first result for an order wins; a
// failed order — its event was dead-lettered — can still be settled by a late result),
// and writes each order's history. An event for an unknown order is reported, and its id
// is not kept, so a redriven copy is judged again. Any error leaves nothing behind.
//
// It is one statement (behind the setting that plans it), so one round trip and one
// implicit transaction: the settlement
// consumer is the last hop of every order, and on a busy machine each round trip of a
// transaction is a wait in the run queue (four, before: BEGIN with the idempotency
// insert, the update, the history, COMMIT). Concurrent batches with the same event are
// ordered by the insert into processed_events, which waits for the other's commit and
// then finds the event applied.
func (s *store) settle(ctx context.Context, reqs []settleRequest) ([]settlement, error) {
	ids, orders := make([]string, len(reqs)), make([]string, len(reqs))
	statuses, reasons := make([]string, len(reqs)), make([]string, len(reqs))
	for i, r := range reqs {
		ids[i], orders[i], statuses[i], reasons[i] = r.eventID, r.orderID, r.status, r.reason
	}
	// t: the batch, numbered, each event with whether its order exists.
	// p: the event ids recorded now (not before, not twice), for orders that exist; an
	//    unknown order's event is never recorded.
	// f: per order, its first event that is new (or, for an unknown order, its first).
	// u: the orders those events settle; h: their history.
	// Planned with postgres.IndexPlans: a cached plan made while orders was small looked
	// every batch's orders up by scanning the whole table, twice (a hashed EXISTS and a
	// hash join). The batch is one implicit transaction, so the settings hold for the
	// statement. Whether the order exists is a join, not an EXISTS: a hashed subplan would
	// read the whole index even so.
	out := make([]settlement, len(reqs))
	for i := range out {
		out[i].duplicate = true // unless the statement says this event settled its order
	}
	b := &pgx.Batch{}
	postgres.IndexPlans(b)
	b.Queue(settleSQL, ids, orders, statuses, reasons).Query(func(rows pgx.Rows) error {
		var n int64
		var known bool
		var created *time.Time
		_, err := pgx.ForEachRow(rows, []any{&n, &known, &created}, func() error {
			if n < 1 || int(n) > len(out) {
				return fmt.Errorf("settle: row %d of a batch of %d", n, len(out))
			}
			switch i := n - 1; {
			case created != nil:
				out[i] = settlement{age: time.Since(*created)}
			case !known:
				out[i] = settlement{unknown: true}
			}
			return nil
		})
		return err
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// settleSQL is store.settle's statement; its parts are explained there.
const settleSQL = `WITH t AS (
			SELECT t.e, t.o, t.st, t.rs, t.n, x.id IS NOT NULL AS known
			FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) WITH ORDINALITY AS t(e, o, st, rs, n)
			LEFT JOIN orders.orders x ON x.id = t.o),
		p AS (
			INSERT INTO orders.processed_events (event_id, order_id)
			SELECT e, o FROM t WHERE known ON CONFLICT DO NOTHING RETURNING event_id),
		f AS (
			SELECT DISTINCT ON (t.o) t.n, t.e, t.o, t.st, t.rs, t.known FROM t
			WHERE NOT t.known OR t.e IN (SELECT event_id FROM p)
			ORDER BY t.o, t.n),
		u AS (
			UPDATE orders.orders AS x SET status = f.st, reason = nullif(f.rs, ''), settled_at = now(), updated_at = now()
			FROM f WHERE x.id = f.o AND x.status IN ('pending', 'failed') RETURNING x.id, x.created_at),
		h AS (
			INSERT INTO orders.order_history (order_id, status, reason, event_id)
			SELECT f.o, f.st, nullif(f.rs, ''), f.e FROM f JOIN u ON u.id = f.o)
		SELECT f.n, f.known, u.created_at FROM f LEFT JOIN u ON u.id = f.o`

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

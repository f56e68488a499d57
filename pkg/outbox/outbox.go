// Package outbox is the transactional outbox both services use: a state change and the
// event announcing it commit in one PostgreSQL transaction, and a relay publishes the
// event to JetStream afterwards, at least once, deduplicated by the broker on the event id.
//
// The package owns its table: Outbox.Migrate creates it (schema.go holds its shape), so a
// service needs no migration of its own for it.
//
// Waking the relay: Enqueue does not NOTIFY inside the caller's transaction, because
// PostgreSQL serialises every committing transaction that has notified on one
// server-wide lock, while this one still holds its row locks (the load test saw commits
// queue on it at 500 orders/s). The caller calls Notify after committing instead, which
// wakes the relay in this process at once and sends one coalesced NOTIFY for relays in
// other processes.
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"loudly/pkg/telemetry"
)

// Message is one event to publish.
type Message struct {
	EventID string // becomes Nats-Msg-Id, so a re-publish after a crash is dropped by the broker
	Subject string
	Payload []byte
	Headers nats.Header // optional extra headers; the trace context is added by Enqueue
}

// Outbox writes messages into one service's outbox table.
type Outbox struct {
	table   string
	channel string
	pool    *pgxpool.Pool
	tel     *telemetry.Telemetry

	wake      chan struct{} // the relay of this process
	committed atomic.Uint64 // Notify calls so far: commits the relay was told of
	notifying atomic.Bool   // a coalesced NOTIFY is scheduled
	// sender is the payload of this outbox's NOTIFYs: its own relay, woken through wake
	// already, knows its own notifications by it and ignores them.
	sender string
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$`)

// New returns the outbox stored in table ("schema.table") of pool. Relays in other
// processes are woken through the LISTEN/NOTIFY channel named after the table.
func New(table string, pool *pgxpool.Pool, tel *telemetry.Telemetry) (*Outbox, error) {
	if !identifier.MatchString(table) {
		return nil, fmt.Errorf("outbox: table %q must be schema.table in lower case", table)
	}
	if pool == nil || tel == nil {
		return nil, fmt.Errorf("outbox: pool and telemetry are required")
	}
	return &Outbox{table: table, channel: channelFor(table), pool: pool, tel: tel, wake: make(chan struct{}, 1),
		sender: uuid.NewString()}, nil
}

// notifyCoalesce is how long Notify gathers commits into one NOTIFY. The relay of the
// committing process is woken at once without it, so the NOTIFY only wakes relays of
// other replicas, as a second chance for rows before their next poll; each one is a
// transaction of its own (10ms made it 100 a second per outbox under any steady load, a
// fifth of the transactions of the whole pipeline at 370 orders/s on 2 cores).
const notifyCoalesce = 100 * time.Millisecond

// Notify tells the relays that rows were committed. Call it after the transaction that
// enqueued them committed; a forgotten call only delays publishing until the relay's next
// poll. The NOTIFY it sends is coalesced: it goes out after notifyCoalesce and covers
// every commit made before it, so a burst of commits costs one notification. The relay of
// this outbox ignores it (it was woken directly): a self-wake would be one more claim,
// found empty, per NOTIFY.
func (o *Outbox) Notify() {
	o.committed.Add(1)
	select {
	case o.wake <- struct{}{}:
	default:
	}
	if !o.notifying.CompareAndSwap(false, true) {
		return // a NOTIFY is scheduled and will be sent after this commit
	}
	go func() {
		time.Sleep(notifyCoalesce)
		o.notifying.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		// A failure is harmless: the relays poll.
		_, _ = o.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, o.channel, o.sender)
	}()
}

func channelFor(table string) string {
	b := []byte(table)
	for i, c := range b {
		if c == '.' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Enqueue adds m to the outbox inside tx, with the W3C trace context of ctx, so the relay's
// publish span continues the trace that produced the event. Nothing is published unless tx
// commits; call Notify after the commit.
func (o *Outbox) Enqueue(ctx context.Context, tx pgx.Tx, m Message) error {
	return o.EnqueueAll(ctx, tx, []Message{m}, nil)
}

// EnqueueAll adds ms to the outbox inside tx in one statement: a batch handler's result
// events. Each carries the trace context of traceOf(i) — the context of the message it
// answers — or of ctx when traceOf is nil.
func (o *Outbox) EnqueueAll(ctx context.Context, tx pgx.Tx, ms []Message, traceOf func(i int) context.Context) error {
	if len(ms) == 0 {
		return nil
	}
	sql, args, err := o.insert(ctx, ms, traceOf)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	return nil
}

// Queue adds the insert of ms (as EnqueueAll would run it) to b, for a caller that sends
// its whole transaction as one pipelined batch: pgx runs a batch's statements in one
// implicit transaction and one round trip, so the rows commit with the batch's other
// statements or not at all. The statement's error, if any, is the batch's. Call Notify
// once the batch has succeeded.
func (o *Outbox) Queue(ctx context.Context, b *pgx.Batch, ms []Message, traceOf func(i int) context.Context) error {
	if len(ms) == 0 {
		return nil
	}
	sql, args, err := o.insert(ctx, ms, traceOf)
	if err != nil {
		return err
	}
	b.Queue(sql, args...)
	return nil
}

// insert is the statement that stores ms, with each message's headers and trace context.
// One message, the common case of an API request, is a plain VALUES row: encoding four
// arrays for it costs more than the row.
func (o *Outbox) insert(ctx context.Context, ms []Message, traceOf func(i int) context.Context) (string, []any, error) {
	ids, subjects := make([]string, len(ms)), make([]string, len(ms))
	payloads, headers := make([][]byte, len(ms)), make([][]byte, len(ms))
	for i, m := range ms {
		h := make(nats.Header, len(m.Headers)+2)
		for k, v := range m.Headers {
			h[k] = v
		}
		tctx := ctx
		if traceOf != nil {
			tctx = traceOf(i)
		}
		o.tel.Inject(tctx, h)
		hb, err := json.Marshal(h)
		if err != nil {
			return "", nil, fmt.Errorf("outbox: headers: %w", err)
		}
		ids[i], subjects[i], payloads[i], headers[i] = m.EventID, m.Subject, m.Payload, hb
	}
	if len(ms) == 1 {
		return `INSERT INTO ` + o.table + ` (event_id, subject, payload, headers) VALUES ($1, $2, $3, $4)`,
			[]any{ids[0], subjects[0], payloads[0], headers[0]}, nil
	}
	return `INSERT INTO ` + o.table + ` (event_id, subject, payload, headers)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::jsonb[])`,
		[]any{ids, subjects, payloads, headers}, nil
}

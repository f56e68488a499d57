// Package idempotency is the one place a consumer decides "have I processed this event
// before?". It records the events a consumer processes in the transaction of the change
// they make: committed together, a redelivered event is recognised and applied once;
// rolled back together, a failed one is retried from scratch.
//
// It works on batches, as the consumer runner delivers them (consumer.HandleBatch): Claim
// records a batch of events with one statement inside the caller's transaction and tells,
// for each, whether it had been processed before — by an earlier transaction, by a
// concurrent one that committed first, or earlier in the same batch. A batch of one is the
// simple case of the same call.
//
// Each service has one record, the table SCHEMA.processed_events, which this package
// creates (Migrate) and alone writes. A service keeps its business state in tables of its
// own (an order's status, a reservation's lines); whether an event was already applied is
// decided here, never by a business table.
package idempotency

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/pkg/postgres"
)

// TableName is the name of a service's record of processed events in its schema.
const TableName = "processed_events"

// ReasonSeen is the reason of a consumer.Duplicate decided because Claim found the event
// seen: one word for it in every service's decisions.
const ReasonSeen = "event_already_applied"

// Table is one service's record of processed events, SCHEMA.processed_events.
type Table struct {
	schema string
	name   string // schema.processed_events
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// New returns the record of the service whose PostgreSQL schema is schema.
func New(schema string) (*Table, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("idempotency: schema %q must be a lower-case identifier", schema)
	}
	return &Table{schema: schema, name: schema + "." + TableName}, nil
}

// Name is the table's qualified name, "schema.processed_events".
func (t *Table) Name() string { return t.name }

// Migrate creates the table (and its schema) when it does not exist. It is idempotent,
// and replicas starting together serialise on an advisory lock of the table.
func (t *Table) Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "loudly.idempotency:"+t.name); err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	if err := postgres.EnsureSchema(ctx, tx, t.schema); err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	// key is the event's entity key, kept for the forensics of "what did this service do
	// for that entity", never read to decide.
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.name+` (
    event_id     uuid        PRIMARY KEY,
    key          text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	return nil
}

// Event is one event to record: its id (a UUID) and its entity key.
type Event struct {
	ID, Key string
}

// Claim is a batch's record, as Claim queued it: once the batch's results have been read
// (the statements sent), Seen tells each event's answer. Err reports a batch Claim could
// not even queue (an id that is not a UUID), before anything is sent.
type Claim struct {
	table  string
	events []Event
	ids    []string // canonical ids, in events' order
	seen   []bool
	read   bool
	err    error
}

// Claim queues into b, which the caller runs inside its transaction (a pgx.Batch sent in a
// transaction, or postgres.Begin's first batch), the statement that records events and
// learns which of them had been processed before. Queue it before the business writes:
//
//   - Committed with the change, each event is recorded exactly once; rolled back with it,
//     nothing is, and the events are decided again from scratch.
//   - Two transactions claiming the same event serialise on its row: the second waits
//     until the first ends, then finds the event seen (the first committed) or takes it
//     (the first rolled back). Events are claimed in id order, so two batches sharing
//     several events cannot deadlock on them.
//   - An event given twice in one batch is new at most once, at its first position.
//
// Seen is valid once the batch has been sent and its results read.
func (t *Table) Claim(b *pgx.Batch, events []Event) *Claim {
	c := &Claim{table: t.name, events: events, ids: make([]string, len(events)), seen: make([]bool, len(events))}
	first := make(map[string]int, len(events)) // canonical id → its first position
	var ids, keys []string
	for i, e := range events {
		u, err := uuid.Parse(e.ID)
		if err != nil {
			c.err = fmt.Errorf("idempotency %s: event id %q is not a UUID", t.name, e.ID)
			return c
		}
		c.ids[i] = u.String()
		if _, dup := first[c.ids[i]]; dup {
			c.seen[i] = true // earlier in this batch
			continue
		}
		first[c.ids[i]] = i
		ids, keys = append(ids, c.ids[i]), append(keys, e.Key)
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(ids[a], ids[b]) })
	sortedIDs, sortedKeys := make([]string, len(ids)), make([]string, len(ids))
	for k, i := range order {
		sortedIDs[k], sortedKeys[k] = ids[i], keys[i]
	}
	b.Queue(`INSERT INTO `+t.name+` (event_id, key)
		SELECT e, k FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS u(e, k, n) ORDER BY n
		ON CONFLICT (event_id) DO NOTHING RETURNING event_id::text`, sortedIDs, sortedKeys).Query(func(rows pgx.Rows) error {
		recorded := make(map[string]bool, len(sortedIDs))
		var id string
		if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { recorded[id] = true; return nil }); err != nil {
			return err
		}
		for canonical, i := range first {
			c.seen[i] = !recorded[canonical] // not recorded now: recorded before
		}
		c.read = true
		return nil
	})
	return c
}

// Err is the error that kept Claim from queuing its statement: then nothing was queued,
// and the caller must not send the batch as if the events were claimed.
func (c *Claim) Err() error { return c.err }

// Seen reports whether events[i] had been processed before (or appears earlier in the
// batch): the caller changes nothing for it and decides consumer.Duplicate. It panics if
// asked before the claim's statement was read, which is a bug in the caller.
func (c *Claim) Seen(i int) bool {
	if !c.read {
		panic("idempotency: Claim.Seen before the batch holding the claim was sent")
	}
	return c.seen[i]
}

// New lists the positions of the events that were not seen: those the caller applies.
func (c *Claim) New() []int {
	var out []int
	for i := range c.events {
		if !c.Seen(i) {
			out = append(out, i)
		}
	}
	return out
}

// Record claims events in tx, in one round trip: Claim for a caller with a pgx.Tx rather
// than a pipelined batch.
func (t *Table) Record(ctx context.Context, tx pgx.Tx, events ...Event) (*Claim, error) {
	b := &pgx.Batch{}
	c := t.Claim(b, events)
	if c.err != nil {
		return nil, c.err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("idempotency %s: %w", t.name, err)
	}
	return c, nil
}

// Forget queues into b, which must run in the transaction that made the claim, the
// removal of the events at positions that this claim recorded and the caller, having
// looked, did not apply after all, so that they are judged afresh if they come again: an
// event decided invalid is dead-lettered, and a redriven copy must not be taken for a
// duplicate. Positions the claim found seen were recorded by someone else and are left.
func (c *Claim) Forget(b *pgx.Batch, positions ...int) {
	var ids []string
	for _, i := range positions {
		if !c.Seen(i) {
			ids = append(ids, c.ids[i])
		}
	}
	if len(ids) == 0 {
		return
	}
	b.Queue(`DELETE FROM `+c.table+` WHERE event_id = ANY($1::uuid[])`, ids)
}

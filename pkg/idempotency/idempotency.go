// Package idempotency remembers the events a consumer has processed, in the transaction
// of the change they made: committed together, a redelivered event is recognised and
// applied once; rolled back together, a failed one is retried from scratch. It is the
// one helper for "remember this event id in this transaction, and tell me if it was seen".
//
// A table of processed events has the event id as its primary key and a column for the
// event's entity key. Migrate creates one in that shape; a service whose table predates
// this package, keyed by a column of another name (a uuid entity_id, say), names its
// key column instead.
package idempotency

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/pkg/postgres"
)

// Table is one service's table of processed events.
type Table struct {
	name      string // schema.table
	keyColumn string
}

var (
	tableName  = regexp.MustCompile(`^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$`)
	columnName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
)

// New returns the table name ("schema.table"), whose entity-key column is keyColumn
// ("key" when empty).
func New(name, keyColumn string) (*Table, error) {
	if keyColumn == "" {
		keyColumn = "key"
	}
	if !tableName.MatchString(name) || !columnName.MatchString(keyColumn) {
		return nil, fmt.Errorf("idempotency: table %q and column %q must be lower-case identifiers (schema.table)", name, keyColumn)
	}
	return &Table{name: name, keyColumn: keyColumn}, nil
}

// Migrate creates the table (and its schema) when it does not exist. It is idempotent,
// and replicas starting together serialise on an advisory lock of the table.
func (t *Table) Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	schema, _, _ := strings.Cut(t.name, ".")
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "loudly.idempotency:"+t.name); err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	if err := postgres.EnsureSchema(ctx, tx, schema); err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s (
    event_id     uuid        PRIMARY KEY,
    %[2]s        text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
)`, t.name, t.keyColumn)); err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("idempotency %s: migrate: %w", t.name, err)
	}
	return nil
}

// Remember records, inside tx, that the event eventID about entity key was processed,
// and reports whether it had been before: then the caller changes nothing and decides
// consumer.Duplicate. Call it first in the transaction of the change. Two concurrent
// deliveries of one event serialise on the row: the second waits for the first's
// transaction and then sees the event as seen (or, if the first rolled back, takes it).
func (t *Table) Remember(ctx context.Context, tx pgx.Tx, eventID, key string) (seen bool, err error) {
	tag, err := tx.Exec(ctx, `INSERT INTO `+t.name+` (event_id, `+t.keyColumn+`) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING`,
		eventID, key)
	if err != nil {
		return false, fmt.Errorf("idempotency %s: %w", t.name, err)
	}
	return tag.RowsAffected() == 0, nil
}

package outbox

import (
	"context"
	"fmt"
	"strings"

	"loudly/pkg/postgres"
)

// schema is the outbox table, created by Migrate. The relay and Enqueue rely on exactly
// these columns; stream_seq is where the event landed in its stream, once sent (forensics
// read it back). The pending index is in id order because the relay claims in id order
// and stops after a batch; an earlier version indexed (next_attempt_at, id), which made
// each claim read and sort every entry left by rows sent since the last vacuum.
const schema = `
CREATE TABLE IF NOT EXISTS %[1]s.%[2]s (
    id              bigserial PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    subject         text        NOT NULL,
    payload         bytea       NOT NULL,
    headers         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz,
    stream_seq      bigint
);
ALTER TABLE %[1]s.%[2]s ADD COLUMN IF NOT EXISTS stream_seq bigint;
DROP INDEX IF EXISTS %[1]s.%[2]s_due;
CREATE INDEX IF NOT EXISTS %[2]s_pending ON %[1]s.%[2]s (id) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS %[2]s_sent ON %[1]s.%[2]s (sent_at) WHERE sent_at IS NOT NULL;
`

// Migrate creates the outbox's table (and its schema and indexes) when they do not exist,
// and brings a table made by an earlier version of this package up to date, so the
// package that relies on the table's shape is the one that defines it (the services'
// own migrations no longer do). It is idempotent, and replicas starting together
// serialise on an advisory lock of the table instead of racing on its creation.
func (o *Outbox) Migrate(ctx context.Context) error {
	tx, err := o.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("outbox %s: migrate: %w", o.table, err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "loudly.outbox:"+o.table); err != nil {
		return fmt.Errorf("outbox %s: migrate: %w", o.table, err)
	}
	schemaName, table, _ := strings.Cut(o.table, ".")
	if err := postgres.EnsureSchema(ctx, tx, schemaName); err != nil {
		return fmt.Errorf("outbox %s: migrate: %w", o.table, err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(schema, schemaName, table)); err != nil {
		return fmt.Errorf("outbox %s: migrate: %w", o.table, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("outbox %s: migrate: %w", o.table, err)
	}
	return nil
}

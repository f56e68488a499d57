// Package outbox is the transactional outbox both services use: a state change and the
// event announcing it commit in one PostgreSQL transaction, and a relay publishes the
// event to JetStream afterwards, at least once, deduplicated by the broker on the event id.
//
// The table each service owns must have this shape (each service creates it in its own
// schema with its own migration):
//
//	id              bigserial primary key
//	event_id        uuid not null unique
//	subject         text not null
//	payload         bytea not null
//	headers         jsonb not null
//	created_at      timestamptz not null default now()
//	attempts        int not null default 0
//	next_attempt_at timestamptz not null default now()
//	last_error      text
//	sent_at         timestamptz
package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
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
	tel     *telemetry.Telemetry
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$`)

// New returns the outbox stored in table ("schema.table"). The relay is woken through the
// LISTEN/NOTIFY channel named after the table.
func New(table string, tel *telemetry.Telemetry) (*Outbox, error) {
	if !identifier.MatchString(table) {
		return nil, fmt.Errorf("outbox: table %q must be schema.table in lower case", table)
	}
	if tel == nil {
		return nil, fmt.Errorf("outbox: telemetry is required")
	}
	return &Outbox{table: table, channel: channelFor(table), tel: tel}, nil
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
// commits.
func (o *Outbox) Enqueue(ctx context.Context, tx pgx.Tx, m Message) error {
	h := nats.Header{}
	for k, v := range m.Headers {
		h[k] = v
	}
	o.tel.Inject(ctx, h)
	hb, err := json.Marshal(h)
	if err != nil {
		return fmt.Errorf("outbox: headers: %w", err)
	}
	if _, err := tx.Exec(ctx,
		`INSERT INTO `+o.table+` (event_id, subject, payload, headers) VALUES ($1, $2, $3, $4)`,
		m.EventID, m.Subject, m.Payload, hb); err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, o.channel); err != nil {
		return fmt.Errorf("outbox: notify: %w", err)
	}
	return nil
}

package outbox

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Entry is an event as its outbox knows it: written with the state change, and sent (with
// its sequence in the stream) once JetStream acknowledged it. Services show entries in
// their APIs, so forensics follow an event without reading another service's tables.
type Entry struct {
	EventID   string     `json:"event_id"`
	Subject   string     `json:"subject"`
	WrittenAt time.Time  `json:"written_at"`
	SentAt    *time.Time `json:"sent_at,omitempty"`
	StreamSeq *int64     `json:"stream_seq,omitempty"`
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
}

// Entries returns the outbox rows of the given events, by event id. Rows removed after the
// relay's retention are simply absent.
func (o *Outbox) Entries(ctx context.Context, eventIDs []string) (map[string]Entry, error) {
	out := map[string]Entry{}
	if len(eventIDs) == 0 {
		return out, nil
	}
	rows, err := o.pool.Query(ctx, `SELECT event_id::text, subject, created_at, sent_at, stream_seq, attempts, coalesce(last_error, '')
		FROM `+o.table+` WHERE event_id = ANY($1::uuid[])`, eventIDs)
	if err != nil {
		return nil, err
	}
	var e Entry
	_, err = pgx.ForEachRow(rows, []any{&e.EventID, &e.Subject, &e.WrittenAt, &e.SentAt, &e.StreamSeq, &e.Attempts, &e.LastError}, func() error {
		out[e.EventID] = e
		e = Entry{}
		return nil
	})
	return out, err
}

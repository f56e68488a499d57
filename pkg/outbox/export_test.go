package outbox

import (
	"context"

	"github.com/jackc/pgx/v5"

	"loudly/pkg/postgres"
)

// SenderOf is the payload of o's NOTIFYs, for tests that notify as o's process would.
func SenderOf(o *Outbox) string { return o.sender }

// ChannelOf is the LISTEN/NOTIFY channel of o's table.
func ChannelOf(o *Outbox) string { return o.channel }

// ClaimPlan is PostgreSQL's plan (EXPLAIN, JSON) for r's claim of a batch, planned as the
// relay's claim transaction plans it.
func ClaimPlan(ctx context.Context, r *Relay) (string, error) {
	b := &pgx.Batch{}
	planClaim(b)
	var plan string
	b.Queue("EXPLAIN (FORMAT JSON) "+r.claimSQL(), r.cfg.BatchSize).QueryRow(func(row pgx.Row) error { return row.Scan(&plan) })
	tx, err := postgres.Begin(ctx, r.pool, b)
	if err != nil {
		return "", err
	}
	tx.Close()
	return plan, nil
}

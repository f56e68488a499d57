package outbox

import (
	"context"
	"fmt"

	"loudly/pkg/postgres"
)

// SenderOf is the payload of o's NOTIFYs, for tests that notify as o's process would.
func SenderOf(o *Outbox) string { return o.sender }

// ChannelOf is the LISTEN/NOTIFY channel of o's table.
func ChannelOf(o *Outbox) string { return o.channel }

// ClaimPlan is PostgreSQL's plan (EXPLAIN, JSON) for r's claim of a batch, planned as the
// relay's claim transaction plans it.
func ClaimPlan(ctx context.Context, r *Relay) (string, error) {
	return postgres.ExplainIndexPlans(ctx, r.pool, r.claimSQL(), fmt.Sprint(r.cfg.BatchSize))
}

// MarkSentPlan is PostgreSQL's plan for marking a batch of r's rows sent, in the claim's
// transaction.
func MarkSentPlan(ctx context.Context, r *Relay) (string, error) {
	return postgres.ExplainIndexPlans(ctx, r.pool, r.markSentSQL(), "'{1,2}'::bigint[]", "'{7,8}'::bigint[]")
}

// Claims is how many claims r has begun.
func Claims(r *Relay) int64 { return r.claims.Load() }

// ClaimsEnded is how many of r's claims have ended (published and committed, or failed).
func ClaimsEnded(r *Relay) int64 { return r.claimsEnded.Load() }

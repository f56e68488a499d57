package idempotency_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/pkg/idempotency"
	"loudly/pkg/postgres"
)

// A batch handler claims its events in the first round trip of its transaction, applies
// only those not seen before, and commits the claim with the change: a redelivered event
// is a consumer.Duplicate, and a batch that rolls back leaves its events to be decided
// again.
func ExampleTable_Claim() {
	ctx := context.Background()
	var pool *pgxpool.Pool        // the service's pool (service.Base.Pool)
	var record *idempotency.Table // the service's record (service.Base.Idempotency)
	events := []idempotency.Event{{ID: "0193d6b4-7c1e-7000-8000-000000000001", Key: "pay-1"}}

	first := &pgx.Batch{}
	claim := record.Claim(first, events)
	if err := claim.Err(); err != nil {
		log.Fatal(err)
	}
	tx, err := postgres.Begin(ctx, pool, first) // BEGIN and the claim, one round trip
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Close()
	writes := &pgx.Batch{}
	for _, i := range claim.New() { // the positions not seen before
		writes.Queue(`UPDATE billing.accounts SET balance = balance + 1 WHERE ref = $1`, events[i].Key)
	}
	if err := tx.Commit(ctx, writes); err != nil {
		log.Fatal(err)
	}
}

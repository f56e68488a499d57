package outbox_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/pkg/outbox"
	"loudly/pkg/postgres"
)

// Publishing through the outbox: the state change and the event that announces it are
// written in one transaction — here one pipelined round trip with COMMIT — and the
// relay publishes the event after the commit, with the event id as its Nats-Msg-Id.
// Notify wakes the relay at once (a missed call only waits for its next poll).
func ExampleOutbox_Queue() {
	ctx := context.Background()
	var pool *pgxpool.Pool // the service's pool (service.Base.Pool)
	var ob *outbox.Outbox  // the service's outbox (service.Base.Outbox), table shipping.outbox
	tx, err := postgres.Begin(ctx, pool, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Close()
	writes := &pgx.Batch{}
	writes.Queue(`UPDATE shipping.parcels SET status = 'scheduled' WHERE id = $1`, "p-1")
	event := outbox.Message{EventID: "0193d6b4-7c1e-7000-8000-000000000001", Subject: "shipping.scheduled", Payload: []byte(`{…}`)}
	if err := ob.Queue(ctx, writes, []outbox.Message{event}, nil); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx, writes); err != nil {
		log.Fatal(err) // nothing was written: neither the change nor its event
	}
	ob.Notify()
}

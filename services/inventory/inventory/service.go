package inventory

import (
	"context"
	"embed"

	"loudly/pkg/consumer"
	"loudly/pkg/service"
	"loudly/pkg/telemetry"
	"loudly/services/drill"
	"loudly/services/events"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Service is the running inventory service, on the service base (pkg/service); see the
// order service for the lifecycle.
type Service struct {
	*service.Base
	handler consumer.BatchHandler // the orders consumer's handler, drills included
	drills  *drill.Drills         // nil unless DRILLS=enabled
}

// New opens the base (PostgreSQL schema inventory, seeding the demo catalog; the demo's
// streams; the HTTP listener) and adds the inventory service's parts: its outbox, the
// order consumer (deciding batches) with its drills when the deployment enables them, and
// the API.
func New(ctx context.Context, cfg Config, tel *telemetry.Telemetry) (_ *Service, err error) {
	b, err := service.Open(ctx, service.Spec{Name: "inventory", Schema: "inventory", Migrations: migrations, Streams: events.Streams}, cfg.Config, tel)
	if err != nil {
		return nil, err
	}
	defer b.CloseOnError(&err)
	s := &Service{Base: b}
	ob, err := b.Outbox(ctx)
	if err != nil {
		return nil, err
	}
	st := newStore(b.Pool, ob, b.Idempotency())
	if s.drills, err = drill.Attach(b, cfg.Drills); err != nil { // nil, every fault off, unless DRILLS=enabled
		return nil, err
	}
	reservations := cfg.Consumer.For(events.StreamOrders, Consumer, events.SubjectOrderPlaced)
	s.handler = consumer.HandleBatch(events.OrderPlacedEvent, (&reserver{store: st}).decide, wireDrills(s.drills, st, cfg.HotSKU, reservations)...)
	if reservations.Concurrency == 0 { // CONSUMER_CONCURRENCY unset
		reservations.Concurrency = ReservationConcurrency
	}
	if _, err = b.ConsumeBatch(ctx, reservations, s.handler); err != nil {
		return nil, err
	}
	(&api{store: st, tel: tel}).routes(b.Mux)
	return s, nil
}

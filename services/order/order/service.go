package order

import (
	"context"
	"embed"

	"go.opentelemetry.io/otel/metric"

	"loudly/pkg/consumer"
	"loudly/pkg/deadletter"
	"loudly/pkg/envelope"
	"loudly/pkg/outbox"
	"loudly/pkg/service"
	"loudly/pkg/telemetry"
	"loudly/services/drill"
	"loudly/services/events"
)

//go:embed migrations/*.sql
var migrations embed.FS

// KeyName is what this service calls its events' key (the order id) in decision logs.
const KeyName = "order_id"

// Consumer names of this service.
const (
	SettlementConsumer  = "order-settlement"
	DeadLetterConsumer  = "order-deadletters"
	InventoryConsumerID = "inventory" // the inventory service's consumer, whose letters fail orders
)

// Service is the running order service, on the service base (pkg/service): New opens and
// wires it; Run serves until its context ends and then shuts down gracefully; Close
// releases the connections. main and the end-to-end tests start it the same way.
type Service struct {
	*service.Base
	reconciler *reconciler
	drills     *drill.Drills // nil unless DRILLS=enabled
	groups     *grouper      // the API's accepts, committed in groups
}

// New opens the base (PostgreSQL schema orders, the demo's streams, the HTTP listener)
// and adds the order service's parts: its outbox, the settlement and dead-letter
// consumers, the reconciler and the API — and, when the deployment enables drills, the
// drills' publisher around the relay and the poison-flood drill. It returns an error, never exits.
func New(ctx context.Context, cfg Config, tel *telemetry.Telemetry) (_ *Service, err error) {
	b, err := service.Open(ctx, service.Spec{Name: "order", Schema: "orders", Migrations: migrations, Streams: events.Streams}, cfg.Config, tel)
	if err != nil {
		return nil, err
	}
	defer b.CloseOnError(&err)
	s := &Service{Base: b}
	if s.drills, err = drill.Attach(b, cfg.Drills); err != nil { // nil, every fault off, unless DRILLS=enabled
		return nil, err
	}
	var decorate []func(outbox.Publisher) outbox.Publisher
	if s.drills != nil {
		decorate = append(decorate, s.drills.Publisher, func(p outbox.Publisher) outbox.Publisher { return driftPublisher(p, s.drills) })
		b.Go("poison-flood drill", (&poisoner{js: b.JS, drills: s.drills, tel: tel}).Run)
	}
	ob, err := b.Outbox(ctx, decorate...)
	if err != nil {
		return nil, err
	}
	st := &store{pool: b.Pool, outbox: ob, processed: b.Idempotency()}
	set, err := newSettler(st, tel.Meter())
	if err != nil {
		return nil, err
	}
	results := []*envelope.Type[events.InventoryResult]{events.InventoryReservedEvent, events.InventoryRejectedEvent}
	settlement := cfg.Consumer.For(events.StreamInventory, SettlementConsumer, "inventory.>")
	if settlement.MaxAckPending == 0 { // CONSUMER_MAX_ACK_PENDING unset
		settlement.MaxAckPending = SettlementMaxAckPending
	}
	if _, err = b.ConsumeBatch(ctx, settlement, consumer.HandleBatchOf(results, set.settle)); err != nil {
		return nil, err
	}
	letters := cfg.Consumer.For(deadletter.Stream, DeadLetterConsumer, deadletter.SubjectPrefix+InventoryConsumerID)
	letters.RawPayload = true
	if _, err = b.Consume(ctx, letters, set.handleDeadLetter); err != nil {
		return nil, err
	}
	if s.reconciler, err = newReconciler(st, tel, cfg.ReconcileInterval, cfg.SettlementDeadline); err != nil {
		return nil, err
	}
	b.Go("reconciler", s.reconciler.Run)
	accepted, err := tel.Meter().Int64Counter("loudly.orders.accepted", metric.WithUnit("{order}"),
		metric.WithDescription("Orders accepted by the API (202), the input side of business throughput."))
	if err != nil {
		return nil, err
	}
	if err := deadletter.RegisterDepthGauge(tel.Meter(), b.JS); err != nil {
		return nil, err
	}
	s.groups = newGrouper(st, tel, cfg.AcceptCommitters)
	(&api{store: st, groups: s.groups, tel: tel, accepted: accepted}).routes(b.Mux)
	return s, nil
}

package order

import (
	"context"
	"embed"
	"io/fs"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"

	"loudly/pkg/broker"
	"loudly/pkg/consumer"
	"loudly/pkg/deadletter"
	"loudly/pkg/envelope"
	"loudly/pkg/faults"
	"loudly/pkg/health"
	"loudly/pkg/httpapi"
	"loudly/pkg/lifecycle"
	"loudly/pkg/outbox"
	"loudly/pkg/postgres"
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

// Service is the running order service. New connects and migrates; Run serves until its
// context ends and then shuts down gracefully; Close releases the connections. main and
// the end-to-end tests start it the same way.
type Service struct {
	cfg    Config
	tel    *telemetry.Telemetry
	pool   *pgxpool.Pool
	nc     *nats.Conn
	js     jetstream.JetStream
	server *httpapi.Server

	relay       *outbox.Relay
	settlements *consumer.Runner
	letters     *consumer.Runner
	reconciler  *reconciler
	faults      *faults.Watcher
	stopWatch   context.CancelFunc
}

// New connects to PostgreSQL and NATS, applies migrations, ensures streams and consumers,
// and opens the HTTP listener. It returns an error, never exits.
func New(ctx context.Context, cfg Config, tel *telemetry.Telemetry) (_ *Service, err error) {
	s := &Service{cfg: cfg, tel: tel}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.pool, err = postgres.Connect(ctx, cfg.DatabaseURL, cfg.DBMaxConns, tel); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(migrations, "migrations")
	if err = postgres.Migrate(ctx, s.pool, "orders", sub); err != nil {
		return nil, err
	}
	if s.nc, s.js, err = broker.Connect(ctx, cfg.NATSURL, "loudly-order", tel.Logger, events.Streams, cfg.Broker); err != nil {
		return nil, err
	}
	ob, err := outbox.New("orders.outbox", s.pool, tel)
	if err != nil {
		return nil, err
	}
	st := &store{pool: s.pool, outbox: ob}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	s.stopWatch = stopWatch
	if s.faults, err = drill.Watch(watchCtx, s.js, tel.Meter()); err != nil {
		return nil, err
	}
	if s.relay, err = outbox.NewRelay(ob, s.pool, drillPublisher(outbox.JetStream(s.js), s.faults), cfg.Relay); err != nil {
		return nil, err
	}
	set, err := newSettler(st, tel.Meter())
	if err != nil {
		return nil, err
	}
	results := []*envelope.Type[events.InventoryResult]{events.InventoryReservedEvent, events.InventoryRejectedEvent}
	if s.settlements, err = consumer.NewBatch(ctx, s.js,
		cfg.Consumer.For(events.StreamInventory, SettlementConsumer, "inventory.>"), consumer.HandleBatchOf(results, set.settle), tel); err != nil {
		return nil, err
	}
	letterCfg := cfg.Consumer.For(deadletter.Stream, DeadLetterConsumer, deadletter.SubjectPrefix+InventoryConsumerID)
	letterCfg.RawPayload = true
	if s.letters, err = consumer.New(ctx, s.js, letterCfg, set.handleDeadLetter, tel); err != nil {
		return nil, err
	}
	if s.reconciler, err = newReconciler(st, tel, cfg.ReconcileInterval, cfg.SettlementDeadline); err != nil {
		return nil, err
	}
	accepted, err := tel.Meter().Int64Counter("loudly.orders.accepted", metric.WithUnit("{order}"),
		metric.WithDescription("Orders accepted by the API (202), the input side of business throughput."))
	if err != nil {
		return nil, err
	}
	if err := deadletter.RegisterDepthGauge(tel.Meter(), s.js); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	(&api{store: st, tel: tel, accepted: accepted}).routes(mux)
	checks := &health.Checks{}
	checks.Add("postgres", s.pool.Ping)
	checks.Add("nats", broker.ReadyCheck(s.nc))
	checks.Add("streams", broker.StreamsReadyCheck(s.js, events.StreamOrders, events.StreamInventory, deadletter.Stream))
	checks.Add("consumers", consumer.ReadyCheck(s.js, s.settlements, s.letters))
	if s.server, err = httpapi.Listen(cfg.HTTPAddr, mux, checks, tel, "order"); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is the HTTP listen address.
func (s *Service) Addr() string { return s.server.Addr() }

// Run serves until ctx is cancelled, then stops taking requests, lets the consumers finish
// the messages in flight (releasing the rest), stops the relay and the reconciler, and
// returns the first error any part failed with.
func (s *Service) Run(ctx context.Context) error {
	s.tel.Logger.Info("order service started", "addr", s.Addr())
	return lifecycle.Serve(ctx, s.server, s.cfg.ShutdownTimeout,
		lifecycle.Worker{Name: "outbox relay", Run: s.relay.Run},
		lifecycle.Worker{Name: "settlement consumer", Run: s.settlements.Run},
		lifecycle.Worker{Name: "dead-letter consumer", Run: s.letters.Run},
		lifecycle.Worker{Name: "reconciler", Run: s.reconciler.Run},
		lifecycle.Worker{Name: "poison-flood drill", Run: (&poisoner{js: s.js, faults: s.faults, tel: s.tel}).Run},
	)
}

// Close releases the connections. It is safe on a partly built service.
func (s *Service) Close() {
	if s.stopWatch != nil {
		s.stopWatch()
	}
	if s.nc != nil {
		_ = s.nc.Drain()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

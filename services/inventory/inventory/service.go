package inventory

import (
	"context"
	"embed"
	"io/fs"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/broker"
	"loudly/pkg/consumer"
	"loudly/pkg/deadletter"
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

// Service is the running inventory service; see the order service for the lifecycle.
type Service struct {
	cfg       Config
	tel       *telemetry.Telemetry
	pool      *pgxpool.Pool
	nc        *nats.Conn
	js        jetstream.JetStream
	server    *httpapi.Server
	relay     *outbox.Relay
	orders    *consumer.Runner
	handler   consumer.BatchHandler // the orders consumer's handler, drills included
	drills    *drills
	stopWatch context.CancelFunc
}

// New connects, migrates (seeding the demo catalog), ensures streams and the consumer, and
// opens the HTTP listener.
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
	if err = postgres.Migrate(ctx, s.pool, "inventory", sub); err != nil {
		return nil, err
	}
	if s.nc, s.js, err = broker.Connect(ctx, cfg.NATSURL, "loudly-inventory", tel.Logger, events.Streams, cfg.Broker); err != nil {
		return nil, err
	}
	ob, err := outbox.New("inventory.outbox", s.pool, tel)
	if err != nil {
		return nil, err
	}
	st := newStore(s.pool, ob)
	if s.relay, err = outbox.NewRelay(ob, s.pool, outbox.JetStream(s.js), cfg.Relay); err != nil {
		return nil, err
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	s.stopWatch = stopWatch
	w, err := drill.Watch(watchCtx, s.js, tel.Meter())
	if err != nil {
		return nil, err
	}
	s.drills = &drills{faults: w, hotSKU: cfg.HotSKU, ackWait: cfg.Consumer.AckWait}
	s.handler = consumer.HandleBatch(events.OrderPlacedEvent, (&reserver{store: st}).decide, s.drills.wire(st)...)
	if s.orders, err = consumer.NewBatch(ctx, s.js,
		cfg.Consumer.For(events.StreamOrders, Consumer, events.SubjectOrderPlaced), s.handler, tel); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	(&api{store: st, tel: tel}).routes(mux)
	checks := &health.Checks{}
	checks.Add("postgres", s.pool.Ping)
	checks.Add("nats", broker.ReadyCheck(s.nc))
	checks.Add("streams", broker.StreamsReadyCheck(s.js, events.StreamOrders, events.StreamInventory, deadletter.Stream))
	checks.Add("consumers", consumer.ReadyCheck(s.js, s.orders))
	if s.server, err = httpapi.Listen(cfg.HTTPAddr, mux, checks, tel, "inventory"); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is the HTTP listen address.
func (s *Service) Addr() string { return s.server.Addr() }

// Run serves until ctx is cancelled, then shuts down gracefully.
func (s *Service) Run(ctx context.Context) error {
	s.tel.Logger.Info("inventory service started", "addr", s.Addr())
	return lifecycle.Serve(ctx, s.server, s.cfg.ShutdownTimeout,
		lifecycle.Worker{Name: "order consumer", Run: s.orders.Run},
		lifecycle.Worker{Name: "outbox relay", Run: s.relay.Run},
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

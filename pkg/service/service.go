// Package service is the base every Loudly service is built on, so that a service's own
// package holds only its business wiring. Open connects to PostgreSQL (and migrates the
// service's schema) and to NATS (and ensures the streams the service declares), and opens
// the HTTP listener with /healthz, /readyz and /metrics. The service then adds its parts —
// consumers (Consume: runner, readiness and worker together), its outbox and relay
// (Outbox), its idempotency record (Idempotency), other workers (Go) and its API routes
// (Mux) — and main or a test runs it (Run) and closes it (Close).
//
// It knows no business: no subjects, tables or event types but those the service gives it.
package service

import (
	"context"
	"errors"
	"fmt"
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
	"loudly/pkg/idempotency"
	"loudly/pkg/lifecycle"
	"loudly/pkg/outbox"
	"loudly/pkg/postgres"
	"loudly/pkg/telemetry"
)

// Spec is what a service is, as far as the base is concerned.
type Spec struct {
	Name   string // "shipping": its NATS connection is loudly-NAME, its HTTP spans and log lines name it
	Schema string // the PostgreSQL schema it owns, created at start-up

	// Migrations holds the service's goose migrations in a directory "migrations" (an
	// embed of migrations/*.sql); nil when the service has no tables of its own beyond its
	// outbox and idempotency record, which their packages create.
	Migrations fs.FS

	// Streams are the event streams it ensures at start-up (the dead-letter stream is
	// always ensured): those it consumes and publishes into.
	Streams []jetstream.StreamConfig
}

// Base is an open service. Its fields are the dependencies the service's own wiring
// passes to its stores, handlers and API.
type Base struct {
	Config Config
	Tel    *telemetry.Telemetry
	Pool   *pgxpool.Pool
	NC     *nats.Conn
	JS     jetstream.JetStream
	Mux    *http.ServeMux // the service's API routes; /healthz, /readyz and /metrics are added

	spec    Spec
	record  *idempotency.Table
	server  *httpapi.Server
	workers []lifecycle.Worker
	runners []*consumer.Runner
	outbox  *outbox.Outbox
	closers []func()
	ctx     context.Context
	cancel  context.CancelFunc
}

// Open connects to PostgreSQL and migrates the service's schema, connects to NATS and
// ensures its streams, and opens the HTTP listener (":0" picks a free port; serving starts
// with Run). It returns an error, never exits; on an error nothing is left open.
func Open(ctx context.Context, spec Spec, cfg Config, tel *telemetry.Telemetry) (_ *Base, err error) {
	if spec.Name == "" || spec.Schema == "" || tel == nil {
		return nil, errors.New("service: a name, a schema and telemetry are required")
	}
	b := &Base{Config: cfg, Tel: tel, spec: spec, Mux: http.NewServeMux()}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	defer b.CloseOnError(&err)
	if b.Pool, err = postgres.Connect(ctx, cfg.DatabaseURL, postgres.PoolSize{Max: cfg.DBMaxConns, Min: cfg.DBMinConns, Timeout: cfg.DBTimeout}, tel); err != nil {
		return nil, err
	}
	// The record of processed events comes before the service's own migrations, so that one
	// of them may fill it (from a business table that used to decide idempotency).
	if b.record, err = idempotency.New(spec.Schema); err != nil {
		return nil, err
	}
	if err = b.record.Migrate(ctx, b.Pool); err != nil {
		return nil, err
	}
	var migrations fs.FS
	if spec.Migrations != nil {
		if migrations, err = fs.Sub(spec.Migrations, "migrations"); err != nil {
			return nil, err
		}
	}
	if err = postgres.Migrate(ctx, b.Pool, spec.Schema, migrations); err != nil {
		return nil, err
	}
	if b.NC, b.JS, err = broker.Connect(ctx, cfg.NATSURL, "loudly-"+spec.Name, tel, spec.Streams, cfg.Broker); err != nil {
		return nil, err
	}
	streams := []string{deadletter.Stream}
	for _, st := range spec.Streams {
		streams = append(streams, st.Name)
	}
	checks := &health.Checks{}
	checks.Add("postgres", b.Pool.Ping)
	checks.Add("nats", broker.ReadyCheck(b.NC))
	checks.Add("streams", broker.StreamsReadyCheck(b.JS, streams...))
	checks.Add("consumers", func(ctx context.Context) error { return consumer.ReadyCheck(b.JS, b.runners...)(ctx) })
	if b.server, err = httpapi.Listen(cfg.HTTPAddr, b.Mux, checks, tel, spec.Name); err != nil {
		return nil, err
	}
	return b, nil
}

// Consume creates (or updates) a durable consumer and its runner, and adds it to the
// readiness check and to the workers Run runs: a consumer cannot be half wired. cfg is
// usually the service's tuning for one consumer: Config.Consumer.For(stream, name, filter).
func (b *Base) Consume(ctx context.Context, cfg consumer.Config, h consumer.Handler) (*consumer.Runner, error) {
	r, err := consumer.New(ctx, b.JS, cfg, h, b.Tel)
	if err != nil {
		return nil, err
	}
	b.runners = append(b.runners, r)
	b.Go("consumer "+r.Name(), r.Run)
	return r, nil
}

// ConsumeBatch is Consume for a handler that decides messages in batches
// (Config.Consumer.BatchSize, BatchWait).
func (b *Base) ConsumeBatch(ctx context.Context, cfg consumer.Config, h consumer.BatchHandler) (*consumer.Runner, error) {
	r, err := consumer.NewBatch(ctx, b.JS, cfg, h, b.Tel)
	if err != nil {
		return nil, err
	}
	b.runners = append(b.runners, r)
	b.Go("consumer "+r.Name(), r.Run)
	return r, nil
}

// Outbox returns the service's transactional outbox, table SCHEMA.outbox (created by the
// outbox package), and runs its relay, which publishes to JetStream through decorate's
// decorators of the publisher (drills), the first listed outermost.
func (b *Base) Outbox(ctx context.Context, decorate ...func(outbox.Publisher) outbox.Publisher) (*outbox.Outbox, error) {
	if b.outbox != nil {
		return nil, errors.New("service: one outbox per service")
	}
	ob, err := outbox.New(b.spec.Schema+".outbox", b.Pool, b.Tel)
	if err != nil {
		return nil, err
	}
	if err := ob.Migrate(ctx); err != nil {
		return nil, err
	}
	pub := outbox.JetStream(b.JS)
	for i := len(decorate) - 1; i >= 0; i-- {
		pub = decorate[i](pub)
	}
	relay, err := outbox.NewRelay(ob, b.Pool, pub, b.Config.Relay)
	if err != nil {
		return nil, err
	}
	b.outbox = ob
	b.Go("outbox relay", relay.Run)
	return ob, nil
}

// Idempotency is the service's record of processed events (SCHEMA.processed_events,
// created by Open): every consumer of the service claims the events it applies there, in
// the transaction of the change (idempotency.Table.Claim).
func (b *Base) Idempotency() *idempotency.Table { return b.record }

// Go adds a worker: a part that runs for the life of the service (a reconciler, a
// drill). Run cancels its context at shutdown, after the HTTP server stopped; a worker
// that returns before then stops the service with an error.
func (b *Base) Go(name string, run func(ctx context.Context) error) {
	b.workers = append(b.workers, lifecycle.Worker{Name: name, Run: run})
}

// Context ends when the service is closed: for watchers that outlive Run (drill faults)
// and must stop with the connections.
func (b *Base) Context() context.Context { return b.ctx }

// OnClose adds f to what Close does, before the connections are released.
func (b *Base) OnClose(f func()) { b.closers = append(b.closers, f) }

// Name is the service's name (Spec.Name).
func (b *Base) Name() string { return b.spec.Name }

// Addr is the HTTP listen address.
func (b *Base) Addr() string { return b.server.Addr() }

// Run serves until ctx is cancelled. Then it stops taking requests, lets the consumers
// finish the messages in flight (releasing the rest), stops the relay and the other
// workers, and returns every error any part failed with (lifecycle.Serve).
func (b *Base) Run(ctx context.Context) error {
	if b.server == nil {
		return errors.New("service: Run on a service that failed to open")
	}
	b.Tel.Logger.Info(fmt.Sprintf("%s service started", b.spec.Name), "addr", b.Addr())
	return lifecycle.Serve(ctx, b.server, b.Config.ShutdownTimeout, b.workers...)
}

// CloseOnError closes the base when *err is not nil: a service's New defers it right
// after Open, so a service that fails to wire is never left half open.
func (b *Base) CloseOnError(err *error) {
	if *err != nil {
		b.Close()
	}
}

// Close releases the connections, after the OnClose functions (the last added first). It
// is safe on a partly opened service.
func (b *Base) Close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
	b.cancel()
	if b.NC != nil {
		_ = b.NC.Drain()
	}
	if b.Pool != nil {
		b.Pool.Close()
	}
}

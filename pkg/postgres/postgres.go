// Package postgres connects a service to PostgreSQL with tracing and applies its schema
// migrations at start-up.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"sync"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/telemetry"
)

// PoolSize bounds a service's connections. Max is the pool's size. Min connections are
// opened before Connect returns and kept open (pgxpool replaces one that closes), so a
// service that starts under load — a new replica, a restart in a rolling deploy — does
// not open them while its first requests wait: each is a new PostgreSQL backend, forked
// and authenticated on a machine already busy with the load.
//
// Timeout bounds every wait on the database (DefaultTimeout when zero): acquiring a
// connection, each statement, each batch. A wait the caller's context bounds sooner keeps
// the caller's deadline.
type PoolSize struct {
	Max, Min int
	Timeout  time.Duration
}

// DefaultTimeout is how long a statement, a batch or a connection acquisition may wait
// unless PoolSize.Timeout says otherwise. It is below the HTTP server's write timeout
// (15 s), so a request whose commit waits on a lost synchronous standby answers with an
// error rather than not at all, and well above any statement of the services (they touch
// a few rows by key).
const DefaultTimeout = 10 * time.Second

// The TCP keep-alive of the connections: an idle connection (a relay's LISTEN) to a server
// that vanished without closing it — a partition that drops packets — is found dead after
// about keepAliveIdle + keepAliveCount × keepAliveInterval instead of the kernel's two hours.
const (
	keepAliveIdle     = 5 * time.Second
	keepAliveInterval = 5 * time.Second
	keepAliveCount    = 3
)

// Connect opens a pool whose queries are traced (otelpgx) on tel's providers and checks
// that the server answers, by opening size.Min connections (or one, without a minimum).
//
// dsn may name several servers ("postgres://a:5432,b:5432/db?target_session_attrs=read-write"
// or "host=a,b target_session_attrs=read-write"): pgx tries them in turn for each new
// connection and, with target_session_attrs=read-write, keeps only one that accepts
// writes, i.e. the primary. A connection whose statement fails because the server is
// read-only (SQLSTATE 25006: a primary demoted to a standby, a server in recovery, a
// database set read-only) is not put back in the pool, so the retry that follows — the
// consumer's redelivery, the relay's next cycle, the client's next request — opens a new
// one, which finds the new primary.
func Connect(ctx context.Context, dsn string, size PoolSize, tel *telemetry.Telemetry) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	timeout := size.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{
		Timeout: timeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true,
			Idle: keepAliveIdle, Interval: keepAliveInterval, Count: keepAliveCount},
	}
	cfg.ConnConfig.DialFunc = dialer.DialContext
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > timeout {
		cfg.ConnConfig.ConnectTimeout = timeout
	}
	// Checked when a connection is taken from the pool, not when it is put back:
	// AfterRelease would make every release asynchronous (a goroutine each).
	cfg.PrepareConn = func(_ context.Context, c *pgx.Conn) (bool, error) { return !readOnly(c), nil }
	timeouts, err := tel.Meter().Int64Counter("loudly.db.timeouts", metric.WithUnit("{wait}"),
		metric.WithDescription("Waits on PostgreSQL (a connection, a statement, a batch) that ran out of time, by wait."))
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// Every series starts at 0, so the first timeout is an increase Prometheus sees (a
	// series born at 1 has none) and the dashboard shows 0 rather than no data.
	for _, wait := range waits {
		timeouts.Add(ctx, 0, metric.WithAttributes(attribute.String("wait", wait)))
	}
	if size.Max > 0 {
		cfg.MaxConns = int32(size.Max)
	}
	if size.Min > 0 {
		cfg.MinConns = int32(min(size.Min, int(cfg.MaxConns)))
	}
	cfg.ConnConfig.Tracer = tracer{batchQueryEvents: batchQueryEvents{otelpgx.NewTracer(
		otelpgx.WithTracerProvider(tel.TracerProvider),
		otelpgx.WithMeterProvider(tel.MeterProvider),
		otelpgx.WithTrimSQLInSpanName(),
		otelpgx.WithDisableAcquireTracer(),
	)}, timeout: timeout, timeouts: timeouts}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if cfg.MinConns == 0 {
		err = pool.Ping(pctx)
	} else if err = warm(pctx, pool, int(cfg.MinConns)); err != nil {
		err = fmt.Errorf("opening DB_MIN_CONNS=%d connections: %w", cfg.MinConns, err)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres at %s: %w", cfg.ConnConfig.Host, err)
	}
	if err := otelpgx.RecordStats(pool, otelpgx.WithStatsMeterProvider(tel.MeterProvider)); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: pool metrics: %w", err)
	}
	return pool, nil
}

// CheckDSN reports whether pgx can parse dsn, a postgres:// URL or key=value settings.
// The error does not repeat dsn, which may hold a password.
func CheckDSN(dsn string) error {
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		return errors.New("not a connection string pgx accepts")
	}
	return nil
}

// warm holds n connections of pool at once, so that n are open when it returns. pgxpool
// opens MinConns in the background too, but reports no error and gives no moment when
// they are there; connections it has opened by then are among the n, and the two
// together never open more than the pool's size.
func warm(ctx context.Context, pool *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { conns[i], errs[i] = pool.Acquire(ctx) })
	}
	wg.Wait()
	for _, c := range conns {
		if c != nil {
			c.Release()
		}
	}
	return errors.Join(errs...)
}

// batchQueryEvents is otelpgx's tracer with one change: a statement of a pipelined batch
// that succeeded is an event on the batch's span, not a span of its own. otelpgx starts
// those spans when the statement's result is read and ends them at once, so they carry no
// duration — only which statement ran, which the event says as well, for a fraction of
// the cost of a span (a batch that is a whole transaction, like the order service's
// accept, would otherwise export a span per statement for every request). A statement
// that failed keeps otelpgx's span, with its error and SQLSTATE, and its error count.
type batchQueryEvents struct {
	*otelpgx.Tracer
}

func (t batchQueryEvents) TraceBatchQuery(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchQueryData) {
	if data.Err != nil {
		t.Tracer.TraceBatchQuery(ctx, conn, data)
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent("batch query", trace.WithAttributes(
		semconv.DBQueryText(data.SQL),
		semconv.DBOperationName(otelpgx.SQLOperationName(ctx, data.SQL)),
		otelpgx.RowsAffectedKey.Int64(data.CommandTag.RowsAffected()),
	))
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Execer runs a statement: a pool, a connection or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// EnsureSchema creates schema unless it exists. A schema made for a service beforehand,
// owned by its role, is used as it is: that role need not be allowed to create schemas
// (the least privilege a deployment gives it), which CREATE SCHEMA IF NOT EXISTS alone
// would require, as PostgreSQL checks that right before it looks whether the schema
// exists. Migrate, the outbox and the idempotency record all create their schema this way.
func EnsureSchema(ctx context.Context, db Execer, schema string) error {
	if !schemaName.MatchString(schema) {
		return fmt.Errorf("bad schema name %q", schema)
	}
	if _, err := db.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = '%[1]s') THEN CREATE SCHEMA IF NOT EXISTS %[1]s; END IF;
END $$`, schema)); err != nil {
		return fmt.Errorf("create schema %s: %w", schema, err)
	}
	return nil
}

// Migrate applies the embedded migrations in fsys (goose SQL files) to schema, which it
// creates first unless it exists (then the connecting role need not be allowed to create
// schemas: owning this one is enough); with fsys nil it only creates the schema. Each service owns one schema and its own version table inside it, and
// replicas starting together serialise on a PostgreSQL advisory lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS) error {
	if !schemaName.MatchString(schema) {
		return fmt.Errorf("migrate: bad schema name %q", schema)
	}
	if err := EnsureSchema(ctx, pool, schema); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if fsys == nil {
		return nil
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(lockID(schema)))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(schema+".schema_migrations"),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	return nil
}

// lockID gives each schema its own advisory lock, so two services migrating one database
// at the same time do not wait for each other.
func lockID(schema string) int64 {
	var h int64 = 0x4c4f55444c59 // "LOUDLY"
	for _, c := range schema {
		h = h*31 + int64(c)
	}
	return h
}

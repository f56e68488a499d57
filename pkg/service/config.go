package service

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"loudly/pkg/broker"
	"loudly/pkg/consumer"
	"loudly/pkg/env"
	"loudly/pkg/outbox"
	"loudly/pkg/postgres"
)

// Defaults of the settings this package owns (README, "Configuration"). The consumer's and
// the relay's are consumer.Default* and outbox.Default*.
const (
	DefaultDatabaseURL     = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	DefaultDBMaxConns      = 20
	DefaultDBMinConns      = 8
	DefaultShutdownTimeout = 20 * time.Second
)

// Config is what every Loudly service reads from the same environment variables. A
// service's own Config embeds it and adds its own settings.
type Config struct {
	DatabaseURL string
	DBMaxConns  int
	// DBMinConns connections are opened before the service reports ready, and kept open:
	// a replica that starts under load does not open them while its first requests wait.
	DBMinConns int
	// DBTimeout bounds every wait on PostgreSQL: a connection, a statement, a batch.
	DBTimeout       time.Duration
	NATSURL         string         // one server, or a comma-separated list of a cluster's seeds
	Broker          broker.Options // STREAM_REPLICAS
	HTTPAddr        string
	ShutdownTimeout time.Duration      // graceful shutdown budget on SIGTERM
	Consumer        consumer.Config    // tuning shared by the service's consumers (CONSUMER_*)
	Relay           outbox.RelayConfig // its outbox relay's tuning (OUTBOX_*)
}

// ConfigFromEnv reads the shared variables with r, whose Err reports every bad one;
// defaultAddr is the service's own HTTP_ADDR default.
func ConfigFromEnv(r *env.Reader, defaultAddr string) Config {
	maxConns := r.Int("DB_MAX_CONNS", DefaultDBMaxConns, 2, 1000)
	minConns := r.Int("DB_MIN_CONNS", min(DefaultDBMinConns, maxConns), 0, 1000)
	if minConns > maxConns {
		r.Reject("DB_MIN_CONNS", strconv.Itoa(minConns), fmt.Sprintf("must not exceed DB_MAX_CONNS (%d)", maxConns))
	}
	return Config{
		DatabaseURL:     databaseURL(r),
		DBMaxConns:      maxConns,
		DBMinConns:      minConns,
		DBTimeout:       r.Duration("DB_TIMEOUT", postgres.DefaultTimeout),
		NATSURL:         broker.ReadURL(r),
		Broker:          broker.ReadOptions(r),
		HTTPAddr:        r.Addr("HTTP_ADDR", defaultAddr),
		ShutdownTimeout: r.Duration("SHUTDOWN_TIMEOUT", DefaultShutdownTimeout),
		Consumer:        consumer.Tuning(r),
		Relay:           outbox.RelayTuning(r),
	}
}

// databaseURL reads DATABASE_URL: a postgres:// URL, which may list several hosts
// ("postgres://a:5432,b:5432/db?target_session_attrs=read-write"), or libpq's key=value
// form ("host=a,b dbname=db target_session_attrs=read-write"). Whatever pgx cannot parse
// is rejected here, with the other bad variables, rather than at the first connection.
func databaseURL(r *env.Reader) string {
	v := r.String("DATABASE_URL", DefaultDatabaseURL)
	if strings.Contains(v, "://") {
		return r.URL("DATABASE_URL", DefaultDatabaseURL, "postgres", "postgresql")
	}
	if err := postgres.CheckDSN(v); err != nil {
		r.Reject("DATABASE_URL", v, "neither a postgres:// URL nor key=value settings pgx accepts")
	}
	return v
}

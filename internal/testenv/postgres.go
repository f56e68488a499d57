package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultDSN is where a developer machine or CI job most often has PostgreSQL running.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// The harness state below is per test binary by nature: one probe of the default server
// and at most one local cluster, shared by all tests in the package and stopped by Main.
var (
	mainCalled atomic.Bool

	defaultProbe struct {
		once sync.Once
		err  error
	}

	local struct {
		once sync.Once
		pg   *localPostgres
		err  error
	}
)

// Postgres returns a DSN (a postgres:// URL) for a new, empty database that exists only
// for this test and is dropped, with any connections still open to it, when the test
// ends. The database lives on the first of these servers that is available:
//
//  1. DATABASE_URL, an admin connection (a postgres:// URL); if it is set but not
//     reachable the test fails rather than silently using another server.
//  2. PostgreSQL at 127.0.0.1:5432, user postgres, trust authentication.
//  3. A throwaway cluster started from the local PostgreSQL binaries (initdb and
//     postgres on PATH or under /usr/lib/postgresql/*/bin), once per test binary; this
//     needs TestMain to call Main.
//
// The server must be PostgreSQL 13 or newer (DROP DATABASE ... WITH (FORCE)).
func Postgres(t testing.TB) string {
	t.Helper()
	admin, source, err := adminServer()
	if err != nil {
		t.Fatalf("testenv.Postgres: %v", err)
	}
	dsn, drop, err := createDatabase(admin, source)
	if err != nil {
		t.Fatalf("testenv.Postgres: %v", err)
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("testenv.Postgres: %v", err)
		}
	})
	return dsn
}

// adminServer picks the server that test databases are created on, in the documented
// order, and says where it came from so errors can name it.
func adminServer() (dsn, source string, err error) {
	if v := os.Getenv("DATABASE_URL"); v != "" {
		return v, "DATABASE_URL", nil
	}
	defaultProbe.once.Do(func() {
		defaultProbe.err = ping(defaultDSN, 2*time.Second)
	})
	if defaultProbe.err == nil {
		return defaultDSN, "127.0.0.1:5432", nil
	}
	local.once.Do(func() {
		if !mainCalled.Load() {
			local.err = errors.New("a local PostgreSQL cluster would be started, but the package's TestMain " +
				"does not call testenv.Main, which stops it; add: func TestMain(m *testing.M) { testenv.Main(m) }")
			return
		}
		local.pg, local.err = startLocalPostgres(os.TempDir())
	})
	if local.err != nil {
		return "", "", fmt.Errorf("no PostgreSQL available.\n"+
			"  DATABASE_URL: not set\n"+
			"  %s: %v\n"+
			"  local binaries: %v\n"+
			"Set DATABASE_URL to an admin connection, e.g. DATABASE_URL=postgres://postgres:secret@localhost:5432/postgres?sslmode=disable, "+
			"or run PostgreSQL on 127.0.0.1:5432 with trust authentication for user postgres, "+
			"or install the PostgreSQL server binaries (e.g. apt-get install postgresql) so initdb and postgres can be found",
			defaultDSN, defaultProbe.err, local.err)
	}
	return local.pg.adminDSN(), "local PostgreSQL " + local.pg.dir, nil
}

func stopLocalPostgres() {
	if local.pg != nil {
		if err := local.pg.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		}
	}
}

func ping(dsn string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// createDatabase creates a uniquely named database on the admin server and returns its
// DSN and a function that drops it.
func createDatabase(admin, source string) (dsn string, drop func() error, err error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("%s must be a postgres:// URL (key=value DSNs are not supported)", source)
	}
	name := "loudly_test_" + randomHex(6)
	ident := pgx.Identifier{name}.Sanitize()

	if err := adminExec(admin, source, "CREATE DATABASE "+ident); err != nil {
		return "", nil, err
	}
	drop = func() error {
		// FORCE terminates sessions the test left open (pools, a connection under test),
		// which would otherwise make the drop fail and leak the database.
		return adminExec(admin, source, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

func adminExec(admin, source, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL at %s (%s): %w", source, redact(admin), err)
	}
	defer conn.Close(context.Background())
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s on %s: %w", sql, source, err)
	}
	return nil
}

// redact hides a password in a DSN that goes into a test failure message.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(DSN not shown: not a URL)"
	}
	return u.Redacted()
}

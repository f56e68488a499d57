package testenv

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PostgresServer is a PostgreSQL cluster that belongs to one test, started from the
// machine's own binaries (see Postgres for where they are looked for), so the test can
// stop, crash and restart it, or cut its connections, without disturbing any other test.
// Commits are durable against a crash of the server: a commit the server acknowledged
// survives Crash, so a fault test that finds a lost write has found a real one.
//
// Clients should use DSN, which passes through a Proxy, so Cut can break their
// connections while the server itself keeps running. Methods call t.Fatal and so belong
// on the test's goroutine.
type PostgresServer struct {
	t     testing.TB
	proxy *Proxy

	mu      sync.Mutex
	pg      *localPostgres
	running bool
}

// StartPostgres initialises and starts a cluster for this test, and stops and removes it
// when the test ends. It fails the test when no PostgreSQL binaries are installed.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	// Under the system temporary directory, not t.TempDir: when the tests run as root the
	// server runs as another user, who must be able to reach its directory.
	pg, err := initLocalPostgres(os.TempDir(), true)
	if err != nil {
		t.Fatalf("testenv.StartPostgres: %v", err)
	}
	s := &PostgresServer{t: t, pg: pg, running: true}
	s.proxy = NewProxy(t, fmt.Sprintf("127.0.0.1:%d", pg.port))
	t.Cleanup(func() {
		if err := pg.stop(); err != nil {
			t.Errorf("testenv.StartPostgres: %v", err)
		}
	})
	return s
}

// DSN is a postgres:// URL for the postgres database, through the proxy. It stays the
// same across Stop, Start and Crash.
func (s *PostgresServer) DSN() string {
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable", s.proxy.Addr())
}

// DirectDSN is DSN without the proxy: it keeps working while the connections are cut,
// for a test that checks the server's own state meanwhile.
func (s *PostgresServer) DirectDSN() string { return s.pg.adminDSN() }

// Stop shuts the server down the way an orderly restart does ("fast" shutdown): open
// transactions are rolled back, clients are disconnected, everything committed is kept.
// Stopping a stopped server does nothing.
func (s *PostgresServer) Stop() { s.shutdown(os.Interrupt) }

// Crash stops the server as a crash would ("immediate" shutdown): every process exits at
// once, without a checkpoint, and the next Start recovers from the write-ahead log.
func (s *PostgresServer) Crash() { s.shutdown(syscall.SIGQUIT) }

func (s *PostgresServer) shutdown(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	s.pg.shutdown(sig)
	s.running = false
}

// Start starts a stopped server again, on the same port and data, and returns once it
// accepts connections.
func (s *PostgresServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		s.t.Fatalf("testenv: PostgreSQL on port %d is already running", s.pg.port)
	}
	if err := s.pg.run(); err != nil {
		s.t.Fatalf("testenv: start PostgreSQL again on port %d: %v", s.pg.port, err)
	}
	s.running = true
}

// Restart stops the server and starts it again.
func (s *PostgresServer) Restart() {
	s.t.Helper()
	s.Stop()
	s.Start()
}

// Cut breaks every connection made through DSN and refuses new ones until Restore,
// as a network failure between the services and the database would; the server keeps
// running and keeps what was committed.
func (s *PostgresServer) Cut() { s.proxy.Cut() }

// Restore lets connections through DSN again.
func (s *PostgresServer) Restore() { s.proxy.Restore() }

// CutFor cuts the connections for d and restores them then, without blocking; the
// returned channel is closed once they are restored. The outage lasting d is the point
// of the fault, so the timer here is the fault itself, not a wait for something.
func (s *PostgresServer) CutFor(d time.Duration) <-chan struct{} {
	s.Cut()
	restored := make(chan struct{})
	time.AfterFunc(d, func() {
		s.Restore()
		close(restored)
	})
	return restored
}

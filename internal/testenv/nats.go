package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATS returns the URL of a JetStream-enabled NATS server for this test.
//
// If NATS_URL is set, that server is used and shared by every test, so callers must
// isolate themselves by naming streams and subjects with Prefix. Otherwise each call
// starts its own embedded server, stopped when the test ends.
func NATS(t testing.TB) string {
	t.Helper()
	if url := os.Getenv("NATS_URL"); url != "" {
		if err := checkJetStream(url, 5*time.Second); err != nil {
			t.Fatalf("testenv: NATS_URL=%s is not a usable JetStream server: %v (unset NATS_URL to use an embedded server)", redact(url), err)
		}
		return url
	}
	return EmbeddedNATS(t).URL()
}

// JetStream connects to the server(s) at url with opts and returns a JetStream client
// for the rest of the test; the connection closes when the test ends.
func JetStream(t testing.TB, url string, opts ...nats.Option) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("testenv: connecting to NATS at %s: %v", redact(url), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// checkJetStream fails unless a server answers at url within timeout with JetStream
// enabled, so a misconfigured NATS_URL fails every test at once with one clear reason
// instead of as a timeout deep inside the code under test.
func checkJetStream(url string, timeout time.Duration) error {
	nc, err := nats.Connect(url, nats.Timeout(timeout), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream account info: %w", err)
	}
	return nil
}

// NATSServer is an embedded, JetStream-enabled NATS server that a test can stop and start
// again on the same port with the same store directory, as a broker restart would.
// Its methods call t.Fatal and so belong on the test's goroutine.
type NATSServer struct {
	t        testing.TB
	storeDir string
	conf     string // a nats-server configuration file to start from, or ""

	mu   sync.Mutex
	port int // fixed by the first start, so clients can reconnect to the same URL
	srv  *server.Server
}

// EmbeddedNATS starts an embedded server for this test, ignoring NATS_URL, and stops it
// when the test ends.
func EmbeddedNATS(t testing.TB) *NATSServer {
	t.Helper()
	s := &NATSServer{t: t, storeDir: t.TempDir(), port: server.RANDOM_PORT}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// NATSFromConfig starts an embedded server for this test configured by the nats-server
// configuration file conf (its authorization, users and permissions — variables it does
// not define are read from the environment, so set them with t.Setenv first), on a random
// loopback port with JetStream in a temporary store directory whatever the file says.
func NATSFromConfig(t testing.TB, conf string) *NATSServer {
	t.Helper()
	s := &NATSServer{t: t, storeDir: t.TempDir(), port: server.RANDOM_PORT, conf: conf}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the client URL; it stays the same across Stop and Start.
func (s *NATSServer) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("nats://127.0.0.1:%d", s.port)
}

// Stop shuts the server down and waits until it has released its port and store.
// Stopping a stopped server does nothing.
func (s *NATSServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Start starts the server, on the port and store directory of its first start, so
// JetStream recovers the streams and messages it had when it was stopped.
func (s *NATSServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.t.Fatalf("testenv: NATS server at port %d is already running", s.port)
	}
	opts := &server.Options{}
	if s.conf != "" {
		var err error
		if opts, err = server.ProcessConfigFile(s.conf); err != nil {
			s.t.Fatalf("testenv: NATS configuration %s: %v", s.conf, err)
		}
	}
	opts.Host, opts.Port, opts.JetStream, opts.StoreDir = "127.0.0.1", s.port, true, s.storeDir
	opts.HTTPPort = 0 // no monitoring port: tests run side by side
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		s.t.Fatalf("testenv: configure embedded NATS: %v", err)
	}
	// The server's own log is noise in passing tests, but its errors are the only
	// explanation when it fails to start, so keep those for the failure message.
	logs := &errorLog{}
	srv.SetLoggerV2(logs, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10*time.Second) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		s.t.Fatalf("testenv: embedded NATS did not start on 127.0.0.1:%d with JetStream in %s: %s", s.port, s.storeDir, logs)
	}
	s.srv = srv
	s.port = srv.Addr().(*net.TCPAddr).Port
}

// errorLog keeps a NATS server's warnings and errors and drops everything else.
type errorLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *errorLog) keep(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *errorLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return "no errors logged"
	}
	return strings.Join(l.lines, "; ")
}

func (l *errorLog) Warnf(format string, v ...any)  { l.keep(format, v...) }
func (l *errorLog) Errorf(format string, v ...any) { l.keep(format, v...) }
func (l *errorLog) Fatalf(format string, v ...any) { l.keep(format, v...) }
func (l *errorLog) Noticef(string, ...any)         {}
func (l *errorLog) Debugf(string, ...any)          {}
func (l *errorLog) Tracef(string, ...any)          {}

// removeStreams deletes the streams on the server at url whose names contain token, and
// says so in the test's log when it cannot.
func removeStreams(t testing.TB, url, token string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Logf("testenv: removing the streams of %s: %v", token, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Logf("testenv: removing the streams of %s: %v", token, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var mine []string
	for name := range names.Name() {
		if strings.Contains(name, token) {
			mine = append(mine, name)
		}
	}
	if err := names.Err(); err != nil {
		t.Logf("testenv: listing the streams of %s: %v", token, err)
	}
	for _, name := range mine {
		if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Logf("testenv: deleting stream %s: %v", name, err)
		}
	}
}

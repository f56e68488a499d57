// Package testenv gives integration tests real infrastructure: a JetStream-enabled NATS
// server, a fresh PostgreSQL database, and a TCP proxy that can cut connections to
// either of them. Nothing here is a fake; tests that use it talk to the same servers the
// services talk to in production, so a passing test means the real wiring works.
//
// Packages whose tests call Postgres must route TestMain through Main, because the
// harness may start a PostgreSQL cluster that has to outlive individual tests and be
// stopped when the test binary finishes:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"
)

// Main runs the tests of a package and then stops anything the harness started once
// per test binary (the local PostgreSQL cluster) and removes the programs Build made,
// before exiting with the tests' code.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	stopLocalPostgres()
	removeBuilds()
	os.Exit(code)
}

// Prefix returns a short token, unique to this call, made of letters and digits only, so
// it is safe in NATS stream, consumer and subject names. Tests that share a server (see
// NATS) put it in front of every name they create to stay out of each other's way.
//
// On a shared server (NATS_URL set), the streams whose names hold the token — the test's
// own streams and key-value buckets — are deleted when the test ends, so a machine's
// server does not collect the streams of every run.
func Prefix(t testing.TB) string {
	t.Helper()
	p := "t" + randomHex(4)
	if url := os.Getenv("NATS_URL"); url != "" {
		t.Cleanup(func() { removeStreams(t, url, p) })
	}
	return p
}

// WaitFor polls cond every 20ms until it returns true, and fails the test if that does
// not happen within timeout. Use it instead of sleeping for asynchronous effects (a
// message consumed, a row written) so tests are both fast and patient.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomHex(nbytes int) string {
	b := make([]byte, nbytes)
	rand.Read(b) // crypto/rand.Read never fails since Go 1.24.
	return hex.EncodeToString(b)
}

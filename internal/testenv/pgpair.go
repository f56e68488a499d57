package testenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"loudly/internal/localpg"
)

// PostgresPair is a primary and a synchronous streaming standby that belong to one test,
// started from the machine's own binaries: every commit the primary acknowledges has been
// flushed by the standby too (synchronous_standby_names = '*', synchronous_commit = on),
// so a failover to the standby loses no acknowledged commit. The test plays the failover
// manager (Patroni, CloudNativePG, a managed service): it kills a node, promotes the
// standby, rewinds the old primary into a standby of the new one.
//
// Clients use DSN, which lists both servers with target_session_attrs=read-write, so each
// new connection goes to whichever is the primary. Methods call t.Fatal and so belong on
// the test's goroutine.
type PostgresPair struct {
	t testing.TB

	mu      sync.Mutex
	nodes   [2]*localpg.Server
	primary int // index of the node that is primary
}

// StartPostgresPair initialises a primary, makes its standby from a base backup, waits
// until the primary counts the standby as synchronous, and stops and removes both when
// the test ends.
func StartPostgresPair(t testing.TB) *PostgresPair {
	t.Helper()
	p := &PostgresPair{t: t}
	primary, err := localpg.Primary(os.TempDir())
	if err != nil {
		t.Fatalf("testenv.StartPostgresPair: %v", err)
	}
	p.nodes[0] = primary
	t.Cleanup(func() {
		for _, n := range p.nodes {
			if n != nil {
				if err := n.Stop(); err != nil {
					t.Errorf("testenv.StartPostgresPair: %v", err)
				}
			}
		}
	})
	standby, err := localpg.Standby(os.TempDir(), primary, p.name(1))
	if err != nil {
		t.Fatalf("testenv.StartPostgresPair: %v", err)
	}
	p.nodes[1] = standby
	p.waitSync()
	return p
}

// name is node i's application_name as a standby.
func (p *PostgresPair) name(i int) string { return fmt.Sprintf("node%d", i) }

func (p *PostgresPair) waitSync() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := localpg.WaitSync(ctx, p.nodes[p.primary], p.name(1-p.primary)); err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
}

// Logs is the end of both servers' logs, for a failure message.
func (p *PostgresPair) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for i, n := range p.nodes {
		if n == nil {
			continue
		}
		role := "standby"
		if i == p.primary {
			role = "primary"
		}
		fmt.Fprintf(&b, "--- node%d (%s, port %d):\n%s\n", i, role, n.Port(), n.LogTail())
	}
	return b.String()
}

// DSN is a postgres:// URL for the postgres database that lists both servers, with
// target_session_attrs=read-write: a connection goes to the one that accepts writes.
func (p *PostgresPair) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write",
		p.nodes[0].Port(), p.nodes[1].Port())
}

// PrimaryDSN is a URL for the postgres database on the node that is primary now.
func (p *PostgresPair) PrimaryDSN() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nodes[p.primary].AdminDSN()
}

// StandbyDSN is a URL for the postgres database on the node that is standby now.
func (p *PostgresPair) StandbyDSN() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nodes[1-p.primary].AdminDSN()
}

// KillPrimary kills the primary as a crash of its machine would (SIGKILL to every process
// of the server).
func (p *PostgresPair) KillPrimary() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nodes[p.primary].Kill()
}

// Promote does what a failover manager does once the primary is gone: it promotes the
// standby (pg_ctl promote) and, since the new primary has no standby left to wait for,
// lets it commit without one (synchronous_standby_names = ”), as Patroni's synchronous
// mode does when no synchronous standby is left; Rejoin gives it one again. It returns
// once the new primary accepts writes.
func (p *PostgresPair) Promote() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	next := 1 - p.primary
	if err := p.nodes[next].Promote(); err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
	if err := p.nodes[next].Exec(`ALTER SYSTEM SET synchronous_standby_names = ''`, `SELECT pg_reload_conf()`); err != nil {
		p.t.Fatalf("testenv: %v", err)
	}
	p.primary = next
}

// Rejoin brings the old primary back as a synchronous standby of the new one: pg_rewind
// from the new primary, started as its standby, then synchronous_standby_names = '*' on the
// primary again. It returns once the primary counts it as synchronous.
func (p *PostgresPair) Rejoin() {
	p.t.Helper()
	p.mu.Lock()
	old := 1 - p.primary
	if err := p.nodes[old].Rewind(p.nodes[p.primary], p.name(old)); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("testenv: %v", err)
	}
	if err := p.nodes[p.primary].Exec(`ALTER SYSTEM SET synchronous_standby_names = '*'`, `SELECT pg_reload_conf()`); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("testenv: %v", err)
	}
	p.mu.Unlock()
	p.waitSync()
}

// KillStandby kills the standby as a crash of its machine would. The primary keeps
// running, and with no synchronous standby its commits wait until one comes back.
func (p *PostgresPair) KillStandby() {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := 1 - p.primary
	p.nodes[s].Kill()
}

// RestartStandby starts the killed standby again; it catches up from the primary's WAL,
// and commits waiting for it complete. It returns once it is synchronous again.
func (p *PostgresPair) RestartStandby() {
	p.t.Helper()
	p.mu.Lock()
	s := 1 - p.primary
	if err := p.nodes[s].Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatalf("testenv: start the standby again: %v", err)
	}
	p.mu.Unlock()
	p.waitSync()
}

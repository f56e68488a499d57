package testenv

import (
	"os"
	"os/exec"
	"syscall"

	"loudly/internal/localpg"
)

// localPostgres is a throwaway cluster of package localpg, as the harness uses it.
type localPostgres struct {
	*localpg.Server
	dir  string
	port int
}

// startLocalPostgres initialises a throwaway cluster in a new directory under parent and
// starts it on a free loopback port with trust authentication for user postgres.
func startLocalPostgres(parent string) (*localPostgres, error) {
	return initLocalPostgres(parent, false)
}

// initLocalPostgres is startLocalPostgres, with commits made durable against a crash of
// the server (not of the machine) when durable is true.
func initLocalPostgres(parent string, durable bool) (*localPostgres, error) {
	s, err := localpg.Throwaway(parent, durable)
	if err != nil {
		return nil, err
	}
	return &localPostgres{Server: s, dir: s.Dir(), port: s.Port()}, nil
}

func (pg *localPostgres) adminDSN() string       { return pg.AdminDSN() }
func (pg *localPostgres) run() error             { return pg.Start() }
func (pg *localPostgres) shutdown(sig os.Signal) { pg.Shutdown(sig) }
func (pg *localPostgres) stop() error            { return pg.Stop() }
func freePort() (int, error)                     { return localpg.FreePort() }
func withParentDeathSignal(cmd *exec.Cmd)        { localpg.DieWithParent(cmd, syscall.SIGQUIT) }

// VersionedPostgresBins lists Debian's versioned PostgreSQL binary directories,
// /usr/lib/postgresql/*/bin, newest first (9.6 < 10 < 15).
func VersionedPostgresBins() []string { return localpg.VersionedBins() }

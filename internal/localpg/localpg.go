// Package localpg runs a PostgreSQL cluster from the machine's own binaries (initdb and
// postgres on PATH or under Debian's /usr/lib/postgresql/*/bin), on loopback only, for
// the tests (internal/testenv, when no server is reachable) and for `loudly demo`. It
// never touches a system PostgreSQL: its port is its own and its socket directory is
// inside the cluster's directory. Running as root, it runs PostgreSQL as the postgres (or
// nobody) user, since initdb and postgres refuse to run as root.
package localpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL cluster run from the machine's own binaries. Everything it owns
// lives under its directory. Its methods are not safe for concurrent use.
type Server struct {
	bin, dir, data string
	own            *owner
	durable        bool // commits wait for the WAL write, so a crash loses no acknowledged commit
	throwaway      bool // fsync off, and Stop removes the directory
	port           int
	cmd            *exec.Cmd
	exited         chan struct{} // closed once the postmaster has exited
	logPath        string
	replicated     bool // a node of a primary/standby pair: data checksums, full_page_writes on
}

// owner is the unprivileged account PostgreSQL runs as when the caller runs as root,
// because initdb and postgres refuse to run as root.
type owner struct {
	name     string
	uid, gid int
}

// Throwaway initialises a cluster in a new directory under parent and starts it on a
// free loopback port with trust authentication for user postgres; Stop removes it.
// Durability settings are off, since the cluster is thrown away: they make database
// creation and every commit much faster. With durable, commits still wait for the WAL
// write, so a crash of the server (not of the machine) loses no acknowledged commit.
// Directories of earlier throwaway clusters whose owner died are removed first.
func Throwaway(parent string, durable bool) (*Server, error) {
	removeAbandoned(parent)
	return inNewDir(parent, func(dir string) (*Server, error) { return open(dir, 0, durable, true) })
}

// inNewDir runs build on a new directory under parent, and removes the directory when
// build fails.
func inNewDir(parent string, build func(dir string) (*Server, error)) (*Server, error) {
	dir, err := os.MkdirTemp(parent, "loudly-pg-")
	if err != nil {
		return nil, err
	}
	pg, err := build(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return pg, nil
}

// Open starts the cluster kept in dir, initialising it first when dir holds none yet, on
// port (0: a free one), and keeps it there after Stop: a program that starts it again
// finds its data. Its settings are PostgreSQL's defaults (fsync on), since the data is
// meant to last. dir is created when missing; running as root, the server's user must be
// able to reach it.
func Open(dir string, port int) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return open(abs, port, true, false)
}

func open(dir string, port int, durable, throwaway bool) (*Server, error) {
	pg, err := prepareDir(dir, durable, throwaway)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(pg.data, "PG_VERSION")); err != nil {
		if err := pg.initdb(); err != nil {
			return nil, err
		}
	}
	if port != 0 {
		pg.port = port
		return pg, pg.Start()
	}
	return pg, pg.startOnFreePort()
}

// prepareDir finds the binaries and the account to run them as, and makes dir that
// account's: the Server for a cluster to be kept in dir, not started yet.
func prepareDir(dir string, durable, throwaway bool) (*Server, error) {
	bin, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	own, err := unprivilegedOwner()
	if err != nil {
		return nil, err
	}
	if own != nil {
		if err := os.Chown(dir, own.uid, own.gid); err != nil {
			return nil, err
		}
	}
	return &Server{bin: bin, dir: dir, data: filepath.Join(dir, "data"), own: own, durable: durable, throwaway: throwaway}, nil
}

// startOnFreePort starts the server on a free port. The free port is only free until
// someone else takes it, so a bind failure is worth another port rather than a failure.
func (pg *Server) startOnFreePort() error {
	for attempt := 1; ; attempt++ {
		var err error
		if pg.port, err = FreePort(); err != nil {
			return err
		}
		err = pg.Start()
		if err == nil {
			return nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "already in use") {
			return err
		}
	}
}

func (pg *Server) initdb() error {
	args := []string{"-D", pg.data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync"}
	if pg.replicated {
		// pg_rewind needs data checksums or wal_log_hints recorded in the control file;
		// checksums are, from initdb on, and a base backup inherits them.
		args = append(args, "--data-checksums")
	}
	initdb := exec.Command(filepath.Join(pg.bin, "initdb"), args...)
	if err := prepare(initdb, pg.dir, pg.own); err != nil {
		return err
	}
	if out, err := initdb.CombinedOutput(); err != nil {
		hint := ""
		if pg.own != nil {
			hint = fmt.Sprintf(" (ran as user %s, who must be able to reach %s)", pg.own.name, pg.dir)
		}
		return fmt.Errorf("%s failed%s: %v\n%s", initdb, hint, err, out)
	}
	return nil
}

// Port is the server's TCP port on 127.0.0.1; it stays the same across Shutdown and Start.
func (pg *Server) Port() int { return pg.port }

// Dir is the cluster's directory: its data, its socket and its log (postgres.log).
func (pg *Server) Dir() string { return pg.dir }

// Pid is the postmaster's process id.
func (pg *Server) Pid() int { return pg.cmd.Process.Pid }

// Start starts the postmaster on its port over its data and waits until it accepts
// connections; it is how a cluster is first started and how it is started again after
// Shutdown.
func (pg *Server) Start() error {
	pg.exited = make(chan struct{})
	pg.logPath = filepath.Join(pg.dir, "postgres.log")
	logFile, err := os.OpenFile(pg.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()

	args := []string{
		"-D", pg.data,
		"-p", strconv.Itoa(pg.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + pg.dir,
		"-c", "max_connections=300",
	}
	if pg.throwaway {
		// fsync stays off even for a durable throwaway cluster: only a crash of the
		// machine, which no test causes, needs it.
		args = append(args, "-c", "fsync=off")
		if !pg.replicated {
			args = append(args, "-c", "full_page_writes=off")
		}
	}
	if !pg.durable {
		args = append(args, "-c", "synchronous_commit=off")
	}
	pg.cmd = exec.Command(filepath.Join(pg.bin, "postgres"), args...)
	pg.cmd.Stdout, pg.cmd.Stderr = logFile, logFile
	if err := prepare(pg.cmd, pg.dir, pg.own); err != nil {
		return err
	}
	DieWithParent(pg.cmd, syscall.SIGQUIT)
	ownProcessGroup(pg.cmd)

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the OS thread that started the child exits,
		// not the process; a locked thread that lives as long as the child keeps the
		// signal meaning "the program that started it died".
		runtime.LockOSThread()
		if err := pg.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		pg.cmd.Wait()
		close(pg.exited)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start %s: %w", pg.cmd, err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-pg.exited:
			return fmt.Errorf("postgres exited during start-up: %s", pg.LogTail())
		default:
		}
		if pg.accepting() {
			return nil
		}
		if time.Now().After(deadline) {
			pg.cmd.Process.Kill()
			<-pg.exited
			return fmt.Errorf("postgres not ready on port %d after 60s: %s", pg.port, pg.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeAbandoned deletes cluster directories (about 60 MB each) left behind by test
// binaries that died before Main could clean up, as on a `go test -timeout` panic. The
// postmaster removes its postmaster.pid when it exits, also on the parent-death signal,
// so a directory without one that has not changed for a while belongs to nobody. It is
// best effort: a directory that cannot be removed now is tried again next time.
func removeAbandoned(parent string) {
	dirs, _ := filepath.Glob(filepath.Join(parent, "loudly-pg-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < 10*time.Minute {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "data", "postmaster.pid")); os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}

// AdminDSN is a postgres:// URL for the postgres database as user postgres.
func (pg *Server) AdminDSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

// Stop shuts the cluster down ("fast": clients are disconnected, everything committed
// is kept) and, for a throwaway cluster, removes its directory.
func (pg *Server) Stop() error {
	// SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients and exits cleanly.
	pg.Shutdown(os.Interrupt)
	if !pg.throwaway {
		return nil
	}
	if err := os.RemoveAll(pg.dir); err != nil {
		return fmt.Errorf("remove local PostgreSQL directory: %w", err)
	}
	return nil
}

// Shutdown signals the postmaster (os.Interrupt: "fast" shutdown, syscall.SIGQUIT:
// "immediate", as a crash) and waits for it to exit, killing it after 15s. Shutting down
// a cluster that is not running does nothing.
func (pg *Server) Shutdown(sig os.Signal) {
	select {
	case <-pg.exited:
		return
	default:
	}
	pg.cmd.Process.Signal(sig)
	select {
	case <-pg.exited:
	case <-time.After(15 * time.Second):
		pg.cmd.Process.Kill()
		<-pg.exited
	}
}

// Kill ends the server as a crash of its machine would: SIGKILL to the postmaster and every
// backend at once (its process group), nothing flushed or said to the clients; their
// connections are reset by the kernel. Killing a stopped server does nothing.
func (pg *Server) Kill() {
	select {
	case <-pg.exited:
		return
	default:
	}
	killGroup(pg.cmd.Process.Pid)
	<-pg.exited
}

// LogTail is the end of the server's log, for error messages.
func (pg *Server) LogTail() string {
	b, err := os.ReadFile(pg.logPath)
	if err != nil {
		return err.Error()
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// prepare runs cmd in dir, as own when given. The working directory matters when
// running as another user: the test's own directory may be unreadable to it.
func prepare(cmd *exec.Cmd, dir string, own *owner) error {
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return runAs(cmd, own)
}

func unprivilegedOwner() (*owner, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil {
			continue
		}
		return &owner{name: name, uid: uid, gid: gid}, nil
	}
	return nil, errors.New("running as root, and there is no postgres or nobody user to run PostgreSQL as (it refuses to run as root)")
}

// findPostgresBin returns a directory holding both initdb and postgres: the PATH first
// (following symlinks, since distributions link only some tools into /usr/bin), then
// the newest of Debian's versioned /usr/lib/postgresql/*/bin.
func findPostgresBin() (string, error) {
	var dirs []string
	for _, name := range []string{"initdb", "postgres", "pg_ctl"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		dirs = append(dirs, filepath.Dir(p))
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	dirs = append(dirs, VersionedBins()...)
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("initdb and postgres not found on PATH or under /usr/lib/postgresql/*/bin")
}

// VersionedBins lists Debian's versioned PostgreSQL binary directories,
// /usr/lib/postgresql/*/bin, newest first (9.6 < 10 < 15).
func VersionedBins() []string {
	versioned, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(versioned, func(a, b string) int {
		va, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(a)), 64)
		vb, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(b)), 64)
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	return versioned
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// FreePort is a TCP port free on 127.0.0.1 right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// accepting reports whether the server answers a connection as user postgres.
func (pg *Server) accepting() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.AdminDSN())
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx) == nil
}

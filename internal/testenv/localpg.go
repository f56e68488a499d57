package testenv

import (
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
	"time"
)

// localPostgres is a throwaway PostgreSQL cluster run from the machine's own binaries,
// for when no server is reachable. Everything it owns lives under dir.
type localPostgres struct {
	bin, dir, data string
	own            *owner
	durable        bool // commits wait for the WAL write, so a crash loses no acknowledged commit
	port           int
	cmd            *exec.Cmd
	exited         chan struct{} // closed once the postmaster has exited
	logPath        string
}

// owner is the unprivileged account PostgreSQL runs as when the tests run as root,
// because initdb and postgres refuse to run as root.
type owner struct {
	name     string
	uid, gid int
}

// startLocalPostgres initialises a cluster in a new directory under parent and starts it
// on a free loopback port with trust authentication for user postgres. Only loopback TCP
// and a socket directory inside the cluster's own directory are used, so it never
// collides with a system PostgreSQL.
func startLocalPostgres(parent string) (_ *localPostgres, err error) {
	return initLocalPostgres(parent, false)
}

// initLocalPostgres is startLocalPostgres, with commits made durable against a crash of
// the server (not of the machine) when durable is true.
func initLocalPostgres(parent string, durable bool) (_ *localPostgres, err error) {
	bin, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	own, err := unprivilegedOwner()
	if err != nil {
		return nil, err
	}
	removeAbandoned(parent)
	dir, err := os.MkdirTemp(parent, "loudly-pg-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if own != nil {
		if err := os.Chown(dir, own.uid, own.gid); err != nil {
			return nil, err
		}
	}

	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	if err := prepare(initdb, dir, own); err != nil {
		return nil, err
	}
	if out, err := initdb.CombinedOutput(); err != nil {
		hint := ""
		if own != nil {
			hint = fmt.Sprintf(" (ran as user %s, who must be able to reach %s)", own.name, dir)
		}
		return nil, fmt.Errorf("%s failed%s: %v\n%s", initdb, hint, err, out)
	}

	// The free port is only free until someone else takes it, so a bind failure is
	// worth another port rather than a failed test run.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		pg := &localPostgres{bin: bin, dir: dir, data: data, own: own, durable: durable, port: port}
		err = pg.run()
		if err == nil {
			return pg, nil
		}
		if attempt == 3 || !strings.Contains(err.Error(), "already in use") {
			return nil, err
		}
	}
}

// run starts the postmaster on pg.port over pg.data and waits until it accepts
// connections; it is how a cluster is first started and how it is started again.
func (pg *localPostgres) run() error {
	pg.exited = make(chan struct{})
	pg.logPath = filepath.Join(pg.dir, "postgres.log")
	logFile, err := os.OpenFile(pg.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()

	// Durability settings are off because the cluster is thrown away; they make
	// database creation and every commit in the tests much faster. fsync stays off even
	// for a durable cluster: only a crash of the machine, which no test causes, needs it.
	args := []string{
		"-D", pg.data,
		"-p", strconv.Itoa(pg.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + pg.dir,
		"-c", "max_connections=300",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
	}
	if !pg.durable {
		args = append(args, "-c", "synchronous_commit=off")
	}
	pg.cmd = exec.Command(filepath.Join(pg.bin, "postgres"), args...)
	pg.cmd.Stdout, pg.cmd.Stderr = logFile, logFile
	if err := prepare(pg.cmd, pg.dir, pg.own); err != nil {
		return err
	}
	withParentDeathSignal(pg.cmd)

	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the OS thread that started the child exits,
		// not the process; a locked thread that lives as long as the child keeps the
		// signal meaning "the test binary died".
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
			return fmt.Errorf("postgres exited during start-up: %s", pg.logTail())
		default:
		}
		if ping(pg.adminDSN(), time.Second) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			pg.cmd.Process.Kill()
			<-pg.exited
			return fmt.Errorf("postgres not ready on port %d after 60s: %s", pg.port, pg.logTail())
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

func (pg *localPostgres) adminDSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

// stop shuts the cluster down and removes its directory.
func (pg *localPostgres) stop() error {
	// SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients and exits cleanly.
	pg.shutdown(os.Interrupt)
	if err := os.RemoveAll(pg.dir); err != nil {
		return fmt.Errorf("remove local PostgreSQL directory: %w", err)
	}
	return nil
}

// shutdown signals the postmaster and waits for it to exit, killing it after 15s.
// Shutting down a cluster that is not running does nothing.
func (pg *localPostgres) shutdown(sig os.Signal) {
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

func (pg *localPostgres) logTail() string {
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
	dirs = append(dirs, VersionedPostgresBins()...)
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("initdb and postgres not found on PATH or under /usr/lib/postgresql/*/bin")
}

// VersionedPostgresBins lists Debian's versioned PostgreSQL binary directories,
// /usr/lib/postgresql/*/bin, newest first (9.6 < 10 < 15).
func VersionedPostgresBins() []string {
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

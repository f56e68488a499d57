package localpg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// Primary initialises a throwaway cluster, as Throwaway(parent, true) does, set up to be
// the primary of a synchronous pair: WAL streamed to standbys (Standby), full-page writes
// and wal_log_hints on so that pg_rewind can turn it into a standby after a failover, and
// synchronous_standby_names = '*', so a commit is acknowledged only once one standby has
// flushed its WAL (synchronous_commit = on, PostgreSQL's default, which Throwaway keeps
// for a durable cluster). Until a standby connects, commits wait.
func Primary(parent string) (*Server, error) {
	removeAbandoned(parent)
	return inNewDir(parent, func(dir string) (*Server, error) {
		pg, err := replicatedDir(dir)
		if err != nil {
			return nil, err
		}
		if err := pg.initdb(); err != nil {
			return nil, err
		}
		if err := pg.replicationConf(); err != nil {
			return nil, err
		}
		if err := pg.startOnFreePort(); err != nil {
			return nil, err
		}
		if err := pg.Exec(`ALTER SYSTEM SET synchronous_standby_names = '*'`, `SELECT pg_reload_conf()`); err != nil {
			pg.Stop()
			return nil, err
		}
		return pg, nil
	})
}

// Standby makes a new throwaway cluster under parent from a base backup of primary
// (pg_basebackup, WAL streamed during the copy) and starts it as its streaming standby,
// named application_name name. It returns once the standby is running, in recovery; see
// WaitStreaming for the moment the primary counts it as its synchronous standby.
func Standby(parent string, primary *Server, name string) (*Server, error) {
	return inNewDir(parent, func(dir string) (*Server, error) {
		pg, err := replicatedDir(dir)
		if err != nil {
			return nil, err
		}
		backup := exec.Command(pg.tool("pg_basebackup"),
			"-h", "127.0.0.1", "-p", fmt.Sprint(primary.port), "-U", "postgres",
			"-D", pg.data, "-X", "stream", "--checkpoint=fast", "--no-sync")
		if err := prepare(backup, pg.dir, pg.own); err != nil {
			return nil, err
		}
		if out, err := backup.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", backup, err, out)
		}
		if err := pg.followConf(primary, name); err != nil {
			return nil, err
		}
		if err := pg.startOnFreePort(); err != nil {
			return nil, err
		}
		return pg, nil
	})
}

// Rewind turns pg, a former primary that is stopped (killed or shut down), into a
// streaming standby of primary, the server that took over from it: pg_rewind copies what
// changed on primary since their timelines split and discards what pg wrote that primary
// never had (which, with a synchronous standby, was never acknowledged to a client). It
// starts pg again on its port.
func (pg *Server) Rewind(primary *Server, name string) error {
	select {
	case <-pg.exited:
	default:
		return fmt.Errorf("pg_rewind: the server on port %d is still running", pg.port)
	}
	// A standby just promoted writes its new timeline to its control file only at the
	// checkpoint that follows; pg_rewind reads the timeline there and, before it, finds
	// nothing to rewind (pg_rewind's documentation asks for this CHECKPOINT).
	if err := primary.Exec("CHECKPOINT"); err != nil {
		return err
	}
	rewind := exec.Command(pg.tool("pg_rewind"),
		"--target-pgdata="+pg.data, "--no-sync",
		fmt.Sprintf("--source-server=host=127.0.0.1 port=%d user=postgres dbname=postgres", primary.port))
	if err := prepare(rewind, pg.dir, pg.own); err != nil {
		return err
	}
	if out, err := rewind.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", rewind, err, out)
	}
	if err := pg.followConf(primary, name); err != nil {
		return err
	}
	return pg.Start()
}

// replicationConf adds the settings every node of a pair needs to postgresql.conf, which
// a base backup copies to the standby. They are in the file, not on the command line,
// because pg_rewind runs the old primary's crash recovery in single-user mode, which
// reads only the file: full_page_writes, which pg_rewind needs on the server it rewinds
// from (every node may be that server after a failover), and wal_keep_size, which keeps
// the WAL back to the last checkpoint the timelines share, which pg_rewind reads.
// synchronous_standby_names goes in postgresql.auto.conf (ALTER SYSTEM), where a failover
// manager changes it at run time.
func (pg *Server) replicationConf() error {
	f, err := os.OpenFile(filepath.Join(pg.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprint(f, "\n# a node of a primary/standby pair (localpg)\nfull_page_writes = on\nwal_keep_size = '256MB'\nhot_standby = on\n")
	return err
}

// followConf makes pg start as a standby of primary: standby.signal, and primary_conninfo
// naming it name (what pg_stat_replication.application_name shows).
func (pg *Server) followConf(primary *Server, name string) error {
	if err := pg.writeOwned(filepath.Join(pg.data, "standby.signal"), ""); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(pg.data, "postgresql.auto.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "primary_conninfo = 'host=127.0.0.1 port=%d user=postgres application_name=%s'\n", primary.port, name)
	return err
}

func (pg *Server) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if pg.own != nil {
		return os.Chown(path, pg.own.uid, pg.own.gid)
	}
	return nil
}

// Promote ends pg's recovery (pg_ctl promote), making it a primary that accepts writes, and
// returns once it does.
func (pg *Server) Promote() error {
	promote := exec.Command(pg.tool("pg_ctl"), "promote", "-w", "-t", "60", "-D", pg.data)
	if err := prepare(promote, pg.dir, pg.own); err != nil {
		return err
	}
	if out, err := promote.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", promote, err, out)
	}
	return nil
}

// Exec runs statements on pg's postgres database as user postgres, each on its own (ALTER
// SYSTEM cannot run in a transaction).
func (pg *Server) Exec(statements ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.AdminDSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, q := range statements {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s on port %d: %w", q, pg.port, err)
		}
	}
	return nil
}

// WaitSync waits until primary counts a standby named name as streaming and synchronous
// (pg_stat_replication: state streaming, sync_state sync).
func WaitSync(ctx context.Context, primary *Server, name string) error {
	conn, err := pgx.Connect(ctx, primary.AdminDSN())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_replication
			WHERE application_name = $1 AND state = 'streaming' AND sync_state = 'sync'`, name).Scan(&n)
		if err != nil {
			return err
		}
		if n == 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("standby %s not synchronous on port %d: %w", name, primary.port, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tool is the path of one of PostgreSQL's programs of the same installation as pg's
// postgres: beside it, or beside what it links to (distributions link only some programs
// into /usr/bin or /usr/local/bin). pg_rewind runs postgres from its own directory, so
// the real directory comes first.
func (pg *Server) tool(name string) string {
	var dirs []string
	if real, err := filepath.EvalSymlinks(filepath.Join(pg.bin, "postgres")); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	dirs = append(dirs, pg.bin)
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	return filepath.Join(pg.bin, name) // fails at exec, naming the path
}

// replicatedDir prepares dir for a server of a replicated pair (durable, thrown away).
func replicatedDir(dir string) (*Server, error) {
	pg, err := prepareDir(dir, true, true)
	if err != nil {
		return nil, err
	}
	pg.replicated = true
	return pg, nil
}

package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestMain(m *testing.M) { Main(m) }

func TestPostgres(t *testing.T) {
	t.Run("each call gets its own empty database", func(t *testing.T) {
		a, b := Postgres(t), Postgres(t)
		if dbName(t, a) == dbName(t, b) {
			t.Fatalf("two calls returned the same database %s", dbName(t, a))
		}
		for _, dsn := range []string{a, b} {
			if !strings.HasPrefix(dbName(t, dsn), "loudly_test_") {
				t.Errorf("database name %q lacks the loudly_test_ prefix", dbName(t, dsn))
			}
			if n := tableCount(t, dsn); n != 0 {
				t.Errorf("new database %s has %d tables, want 0", dbName(t, dsn), n)
			}
		}
		connA := connect(t, a)
		if _, err := connA.Exec(context.Background(), "CREATE TABLE orders (id int)"); err != nil {
			t.Fatal(err)
		}
		if n := tableCount(t, b); n != 0 {
			t.Errorf("a table created in one test database is visible in another (%d tables)", n)
		}
	})

	t.Run("the database is dropped after the test, even with a connection left open", func(t *testing.T) {
		var dsn string
		var leftOpen *pgx.Conn
		t.Run("user", func(t *testing.T) {
			dsn = Postgres(t)
			var err error
			leftOpen, err = pgx.Connect(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
		})
		defer leftOpen.Close(context.Background())
		if databaseExists(t, dbName(t, dsn)) {
			t.Errorf("database %s still exists after its test ended", dbName(t, dsn))
		}
		if err := leftOpen.Ping(context.Background()); err == nil {
			t.Error("a connection to the dropped database still works")
		}
	})

	t.Run("an unreachable DATABASE_URL fails the test and names DATABASE_URL", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "postgres://postgres:secret@"+closedAddr(t)+"/postgres?sslmode=disable")
		msg := fatalMessage(t, func(tb testing.TB) { Postgres(tb) })
		if !strings.Contains(msg, "DATABASE_URL") {
			t.Errorf("failure message does not name DATABASE_URL: %s", msg)
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("failure message reveals the password: %s", msg)
		}
	})

	t.Run("a key=value DATABASE_URL is refused clearly", func(t *testing.T) {
		t.Setenv("DATABASE_URL", "host=127.0.0.1 user=postgres password=secret")
		msg := fatalMessage(t, func(tb testing.TB) { Postgres(tb) })
		if !strings.Contains(msg, "DATABASE_URL must be a postgres:// URL") || strings.Contains(msg, "secret") {
			t.Errorf("unexpected failure message: %s", msg)
		}
	})
}

// TestLocalPostgres runs the last-resort path for real: a cluster initialised and
// started from the machine's binaries, then used through DATABASE_URL.
func TestLocalPostgres(t *testing.T) {
	pg, err := startLocalPostgres(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			pg.stop()
		}
	})

	t.Run("listens on loopback only, with its socket inside its own directory", func(t *testing.T) {
		conn := connect(t, pg.adminDSN())
		for setting, want := range map[string]string{
			"listen_addresses":        "127.0.0.1",
			"unix_socket_directories": pg.dir,
			"port":                    strconv.Itoa(pg.port),
		} {
			var got string
			if err := conn.QueryRow(context.Background(), "SELECT current_setting($1)", setting).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s = %q, want %q", setting, got, want)
			}
		}
	})

	t.Run("runs as an unprivileged user when the tests run as root", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("process ownership is read from /proc")
		}
		fi, err := os.Stat(fmt.Sprintf("/proc/%d", pg.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		uid := fi.Sys().(*syscall.Stat_t).Uid
		if os.Geteuid() == 0 && uid == 0 {
			t.Error("postgres runs as root")
		}
		if os.Geteuid() != 0 && int(uid) != os.Geteuid() {
			t.Errorf("postgres runs as uid %d, want the test's uid %d", uid, os.Geteuid())
		}
	})

	t.Run("serves test databases through DATABASE_URL", func(t *testing.T) {
		t.Setenv("DATABASE_URL", pg.adminDSN())
		var dsn string
		t.Run("user", func(t *testing.T) {
			dsn = Postgres(t)
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			if u.Port() != strconv.Itoa(pg.port) {
				t.Errorf("database is on port %s, want the local cluster's %d", u.Port(), pg.port)
			}
			conn := connect(t, dsn)
			if _, err := conn.Exec(context.Background(), "CREATE TABLE stock (sku text PRIMARY KEY)"); err != nil {
				t.Fatal(err)
			}
		})
		conn := connect(t, pg.adminDSN())
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", dbName(t, dsn)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("database %s was not dropped", dbName(t, dsn))
		}
	})

	t.Run("stop shuts the server down and removes its directory", func(t *testing.T) {
		stopped = true
		if err := pg.stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(pg.dir); !os.IsNotExist(err) {
			t.Errorf("%s still exists after stop (stat: %v)", pg.dir, err)
		}
		if err := ping(pg.adminDSN(), time.Second); err == nil {
			t.Error("the server still answers after stop")
		}
	})
}

func TestNATS(t *testing.T) {
	t.Run("embedded server serves JetStream", func(t *testing.T) {
		t.Setenv("NATS_URL", "")
		url := NATS(t)
		js := JetStream(t, url)
		stream := createStream(t, js)
		publish(t, js, stream, "order-1")
		if got := readMessage(t, js, stream, 1); got != "order-1" {
			t.Errorf("read back %q, want %q", got, "order-1")
		}
	})

	t.Run("embedded servers are isolated per call", func(t *testing.T) {
		t.Setenv("NATS_URL", "")
		if a, b := NATS(t), NATS(t); a == b {
			t.Errorf("two calls share the server %s", a)
		}
	})

	t.Run("NATS_URL is used when set", func(t *testing.T) {
		shared := EmbeddedNATS(t).URL()
		t.Setenv("NATS_URL", shared)
		if got := NATS(t); got != shared {
			t.Errorf("NATS() = %s, want NATS_URL %s", got, shared)
		}
	})

	t.Run("an unreachable NATS_URL fails the test and names NATS_URL", func(t *testing.T) {
		t.Setenv("NATS_URL", "nats://"+closedAddr(t))
		start := time.Now()
		msg := fatalMessage(t, func(tb testing.TB) { NATS(tb) })
		if !strings.Contains(msg, "NATS_URL") {
			t.Errorf("failure message does not name NATS_URL: %s", msg)
		}
		if took := time.Since(start); took > 6*time.Second {
			t.Errorf("took %s to give up, want about 5s at most", took)
		}
	})

	t.Run("a NATS_URL without JetStream fails the test", func(t *testing.T) {
		plain, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
		if err != nil {
			t.Fatal(err)
		}
		plain.Start()
		t.Cleanup(plain.Shutdown)
		if !plain.ReadyForConnections(5 * time.Second) {
			t.Fatal("plain NATS server did not start")
		}
		t.Setenv("NATS_URL", plain.ClientURL())
		msg := fatalMessage(t, func(tb testing.TB) { NATS(tb) })
		if !strings.Contains(msg, "JetStream") {
			t.Errorf("failure message does not mention JetStream: %s", msg)
		}
	})
}

func TestEmbeddedNATS_StopStartKeepsStreams(t *testing.T) {
	s := EmbeddedNATS(t)
	url := s.URL()
	js := JetStream(t, url)
	stream := createStream(t, js)
	publish(t, js, stream, "before-restart")

	// A long-lived client, as a service would hold, must find the server again.
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	s.Stop()
	if _, err := nats.Connect(url, nats.NoReconnect(), nats.Timeout(time.Second)); err == nil {
		t.Fatal("connected to a stopped server")
	}
	s.Start()
	if s.URL() != url {
		t.Fatalf("URL changed across restart: %s, then %s", url, s.URL())
	}

	WaitFor(t, 5*time.Second, "the client to reconnect", nc.IsConnected)
	js = JetStream(t, url)
	if got := readMessage(t, js, stream, 1); got != "before-restart" {
		t.Errorf("after restart read %q, want %q", got, "before-restart")
	}
	publish(t, js, stream, "after-restart")
	if got := readMessage(t, js, stream, 2); got != "after-restart" {
		t.Errorf("read %q, want %q", got, "after-restart")
	}
}

func TestProxy(t *testing.T) {
	t.Run("passes bytes both ways, including a half-close", func(t *testing.T) {
		echo := echoServer(t)
		p := NewProxy(t, echo)
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "ping" {
			t.Errorf("echo through proxy = %q, %v; want %q", got, err, "ping")
		}
	})

	t.Run("Cut breaks open connections and refuses new ones; Restore lets new ones through", func(t *testing.T) {
		p, dsn := ProxyDSN(t, Postgres(t))
		if !strings.Contains(dsn, p.Addr()) {
			t.Fatalf("DSN %s does not point at the proxy %s", redact(dsn), p.Addr())
		}
		conn := connect(t, dsn)
		if _, err := conn.Exec(context.Background(), "SELECT 1"); err != nil {
			t.Fatalf("query through proxy: %v", err)
		}

		p.Cut()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
			t.Error("a query on an open connection succeeded after Cut")
		}
		if err := ping(dsn, 2*time.Second); err == nil {
			t.Error("a new connection succeeded after Cut")
		}

		p.Restore()
		if err := ping(dsn, 5*time.Second); err != nil {
			t.Errorf("a new connection failed after Restore: %v", err)
		}
	})
}

func TestPrefix(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{1,15}$`)
	seen := map[string]bool{}
	for range 100 {
		p := Prefix(t)
		if !valid.MatchString(p) {
			t.Fatalf("Prefix() = %q, want a short letters-and-digits token", p)
		}
		if seen[p] {
			t.Fatalf("Prefix() returned %q twice", p)
		}
		seen[p] = true
	}
}

func TestWaitFor(t *testing.T) {
	t.Run("returns once the condition holds", func(t *testing.T) {
		calls := 0
		WaitFor(t, time.Second, "three calls", func() bool { calls++; return calls == 3 })
	})
	t.Run("fails with what it waited for", func(t *testing.T) {
		msg := fatalMessage(t, func(tb testing.TB) {
			WaitFor(tb, 50*time.Millisecond, "the impossible", func() bool { return false })
		})
		if want := "timed out after 50ms waiting for the impossible"; msg != want {
			t.Errorf("message = %q, want %q", msg, want)
		}
	})
}

// fatalTB stands in for a test so the harness's own failure messages can be checked.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalMessage runs fn with a test stand-in and returns the message fn failed with.
func fatalMessage(t *testing.T, fn func(testing.TB)) string {
	t.Helper()
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	if f.msg == "" {
		t.Fatal("expected the call to fail the test, but it did not")
	}
	return f.msg
}

// closedAddr returns a loopback address with nothing listening on it.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func echoServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(b)
			}()
		}
	}()
	return l.Addr().String()
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(dsn), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(u.Path)
}

func tableCount(t *testing.T, dsn string) int {
	t.Helper()
	var n int
	err := connect(t, dsn).QueryRow(context.Background(),
		"SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	admin, _, err := adminServer()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := connect(t, admin).QueryRow(context.Background(),
		"SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func createStream(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	name := Prefix(t) + "_ORDERS"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}}); err != nil {
		t.Fatal(err)
	}
	return name
}

func publish(t *testing.T, js jetstream.JetStream, stream, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, stream+".created", []byte(body)); err != nil {
		t.Fatal(err)
	}
}

func readMessage(t *testing.T, js jetstream.JetStream, stream string, seq uint64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	return string(msg.Data)
}

// The Prometheus and promtool the tests run are the release the compose demo runs, not
// whatever a package manager installed.
func TestPrometheusIsTheComposeRelease(t *testing.T) {
	want := composePin(t, "PROMETHEUS_VERSION")
	for _, bin := range []string{PromtoolPath(t), PrometheusPath(t)} {
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil {
			t.Fatalf("%s --version: %v\n%s", bin, err, out)
		}
		if !strings.Contains(string(out), "version "+strings.TrimPrefix(want, "v")+" ") {
			t.Errorf("%s reports %q, want %s (PROMETHEUS_VERSION in deploy/compose/.env)", bin, strings.SplitN(string(out), "\n", 2)[0], want)
		}
	}
	if got, err := PrometheusModuleVersion("v3.5.0"); got != "v0.305.0" || err != nil {
		t.Errorf("PrometheusModuleVersion(v3.5.0) = %s, %v", got, err)
	}
}

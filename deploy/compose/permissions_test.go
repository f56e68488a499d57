package compose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/internal/testenv"
	"loudly/pkg/broker"
	"loudly/pkg/faults"
	"loudly/pkg/telemetry/telemetrytest"
	"loudly/services"
	"loudly/services/drill"
	"loudly/services/events"
	"loudly/services/inventory/inventory"
	"loudly/services/order/order"
)

// natsFromCompose starts an embedded NATS server configured like the compose demo's: from
// nats/auth.conf, with the users' passwords the compose file gives the nats container.
func natsFromCompose(t *testing.T) string {
	t.Helper()
	project := loadProject(t)
	for k, v := range project.Services["nats"].Environment {
		if v != nil {
			t.Setenv(k, *v)
		}
	}
	return testenv.NATSFromConfig(t, "nats/auth.conf").URL()
}

// serviceEnv is a service's environment in the compose file, pointed at this machine.
func serviceEnv(t *testing.T, service, dsn, natsURL string) func(string) string {
	t.Helper()
	env := map[string]string{}
	for k, v := range loadProject(t).Services[service].Environment {
		if v != nil {
			env[k] = *v
		}
	}
	env["DATABASE_URL"], env["NATS_URL"], env["HTTP_ADDR"], env["SHUTDOWN_TIMEOUT"] = dsn, natsURL, "127.0.0.1:0", "5s"
	return func(k string) string { return env[k] }
}

// The compose demo's NATS server, from the file it mounts, and its PostgreSQL roles, from
// the script it runs, with the real services on their compose credentials: the pipeline
// works end to end with not one publish or subscription refused, each service migrating
// and running as its own role; and what a service must not do — publish another
// service's events, read a stream that is not its own, write the fault bucket, read
// another service's tables — is refused, and a NATS refusal is logged and counted by the
// client, never silent.
func TestLeastPrivilege_EachServiceDoesItsWorkAndNothingElse(t *testing.T) {
	ctx := context.Background()
	natsURL := natsFromCompose(t)
	admin := testenv.Postgres(t)
	rolesFromCompose(t, admin)
	dsn := func(service string) string { return asRole(t, service, admin) }

	if nc, err := nats.Connect(natsURL, nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client was let in")
	}

	invTel := telemetrytest.New(t, "inventory")
	invCfg, err := inventory.ConfigFromEnv(serviceEnv(t, "inventory", dsn("inventory"), natsURL))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.New(ctx, invCfg, invTel.Telemetry)
	if err != nil {
		t.Fatalf("inventory with its compose credentials: %v", err)
	}
	testenv.RunService(t, "inventory", 30*time.Second, inv.Run, inv.Close)
	ordTel := telemetrytest.New(t, "order")
	ordCfg, err := order.ConfigFromEnv(serviceEnv(t, "order", dsn("order"), natsURL))
	if err != nil {
		t.Fatal(err)
	}
	ord, err := order.New(ctx, ordCfg, ordTel.Telemetry)
	if err != nil {
		t.Fatalf("order with its compose credentials: %v", err)
	}
	testenv.RunService(t, "order", 30*time.Second, ord.Run, ord.Close)
	for _, addr := range []string{inv.Addr(), ord.Addr()} {
		testenv.WaitFor(t, 20*time.Second, addr+" ready", func() bool {
			res, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		})
	}

	// The normal flow: placed, reserved, confirmed; every outcome recorded.
	res, err := http.Post("http://"+ord.Addr()+"/v1/orders", "application/json",
		strings.NewReader(`{"customer_id":"c-1","lines":[{"sku":"BOOK-001","quantity":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted || created.ID == "" {
		t.Fatalf("POST /v1/orders: %d %+v", res.StatusCode, created)
	}
	testenv.WaitFor(t, 20*time.Second, "order "+created.ID+" confirmed", func() bool {
		res, err := http.Get("http://" + ord.Addr() + "/v1/orders/" + created.ID)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var o struct{ Status string }
		return json.NewDecoder(res.Body).Decode(&o) == nil && o.Status == "confirmed"
	})
	if len(invTel.Decisions(map[string]string{"stage": "consume", "order_id": created.ID, "outcome": "applied"})) != 1 ||
		len(ordTel.Decisions(map[string]string{"stage": "consume", "order_id": created.ID, "outcome": "applied"})) != 1 {
		t.Errorf("decisions for %s: inventory %v, order %v; want one applied each", created.ID,
			invTel.Decisions(map[string]string{"order_id": created.ID}), ordTel.Decisions(map[string]string{"order_id": created.ID}))
	}
	// The operator starts a drill: inventory (DRILLS=enabled in compose) answers the check
	// on its allowed responses, and the operator alone may write the bucket.
	opNC, opJS := connectAs(t, natsURL, "operator")
	if _, err := drill.Start(ctx, opJS, drill.StockOut, "", 0.5, time.Minute); err != nil {
		t.Fatalf("the operator's drill start: %v", err)
	}
	if err := faults.Stop(ctx, opJS, drill.StockOut); err != nil {
		t.Fatal(err)
	}
	for name, tel := range map[string]*telemetrytest.Capture{"inventory": invTel, "order": ordTel} {
		if n := tel.CounterValue(t, "loudly.nats.permission_violations", nil); n != 0 {
			t.Errorf("%s: %d permissions violations in the normal flow: its permissions in auth.conf are short of what it does\n%v",
				name, n, violationLogs(tel))
		}
	}

	t.Run("order cannot publish inventory's events", func(t *testing.T) {
		nc, _, tel := connectAsService(t, natsURL, "order")
		before := streamMsgs(t, opJS, events.StreamInventory)
		if err := nc.Publish(events.SubjectInventoryReserved, []byte(`{"forged":true}`)); err != nil {
			t.Fatal(err)
		}
		waitViolation(t, tel, "Publish", events.SubjectInventoryReserved)
		if n := streamMsgs(t, opJS, events.StreamInventory); n != before {
			t.Errorf("INVENTORY went from %d to %d messages: the forged result was stored", before, n)
		}
	})
	t.Run("inventory cannot read a stream that is not its own", func(t *testing.T) {
		nc, js, tel := connectAsService(t, natsURL, "inventory")
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := js.CreateOrUpdateConsumer(cctx, events.StreamInventory, jetstream.ConsumerConfig{Durable: "order-settlement"}); err == nil {
			t.Error("inventory took over the order service's consumer on INVENTORY")
		}
		waitViolation(t, tel, "Publish", "$JS.API.CONSUMER.CREATE.INVENTORY.order-settlement")
		if _, err := nc.Subscribe("orders.>", func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		waitViolation(t, tel, "Subscription", "orders.>")
	})
	t.Run("a service cannot write the fault bucket", func(t *testing.T) {
		_, js, tel := connectAsService(t, natsURL, "inventory")
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := faults.Start(cctx, js, drill.SilentSkip, "", 1, 0); err == nil {
			t.Error("inventory switched silent-skip on")
		}
		waitViolation(t, tel, "Publish", "$KV.LOUDLY_FAULTS."+drill.SilentSkip)
		if active, err := faults.List(ctx, opJS); err != nil || len(active) != 0 {
			t.Errorf("faults in the bucket: %+v (%v)", active, err)
		}
	})
	t.Run("a service cannot read another's tables", func(t *testing.T) {
		for _, c := range []struct{ role, table string }{{"order", "inventory.stock"}, {"inventory", "orders.orders"}} {
			conn, err := pgx.Connect(ctx, dsn(c.role))
			if err != nil {
				t.Fatal(err)
			}
			var n int
			err = conn.QueryRow(ctx, "SELECT count(*) FROM "+c.table).Scan(&n)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" { // insufficient_privilege
				t.Errorf("%s's role reading %s: %v, want permission denied", c.role, c.table, err)
			}
			conn.Close(ctx)
		}
	})
	opNC.Close()
}

// rolesFromCompose runs postgres/roles.sql on the test's database the way the postgres
// image runs an init script (psql -v ON_ERROR_STOP=1 --no-psqlrc -f, as the admin), with
// the passwords the compose file gives the container; and drops what it made when the
// test ends (roles belong to the server, not to the test's database).
func rolesFromCompose(t *testing.T, admin string) {
	t.Helper()
	psql, err := exec.LookPath("psql")
	for _, dir := range testenv.VersionedPostgresBins() {
		if err != nil {
			psql, err = filepath.Join(dir, "psql"), nil
			if _, serr := os.Stat(psql); serr != nil {
				err = serr
			}
		}
	}
	if err != nil {
		t.Fatalf("psql, which runs postgres/roles.sql as the postgres image does, is not installed: %v", err)
	}
	cmd := exec.Command(psql, "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-q", "-f", "postgres/roles.sql", admin)
	cmd.Env = os.Environ()
	for k, v := range loadProject(t).Services["postgres"].Environment {
		if v != nil && strings.HasSuffix(k, "_DB_PASSWORD") {
			cmd.Env = append(cmd.Env, k+"="+*v)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql -f postgres/roles.sql: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Errorf("drop the roles: %v", err)
			return
		}
		defer conn.Close(context.Background())
		for _, svc := range services.All {
			_, _ = conn.Exec(context.Background(), "DROP OWNED BY "+svc.DBRole()+" CASCADE")
			if _, err := conn.Exec(context.Background(), "DROP ROLE IF EXISTS "+svc.DBRole()); err != nil {
				t.Logf("role %s left on the test server: %v", svc.DBRole(), err)
			}
		}
	})
}

// asRole is the service's compose DATABASE_URL (its role and password) pointed at the
// test's server and database.
func asRole(t *testing.T, service, admin string) string {
	t.Helper()
	composeURL := loadProject(t).Services[service].Environment["DATABASE_URL"]
	u, err := url.Parse(deref(composeURL))
	if err != nil {
		t.Fatal(err)
	}
	a, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Host, u.Path, u.RawQuery = a.Host, a.Path, a.RawQuery
	return u.String()
}

// connectAs is a plain client with a user's compose credentials.
func connectAs(t *testing.T, url, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, loadProjectEnv(t, strings.ToUpper(user)+"_NATS_PASSWORD")))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// connectAsService connects the way the service does (pkg/broker, its compose
// credentials and connection name), with a telemetry capture of its own.
func connectAsService(t *testing.T, url, service string) (*nats.Conn, jetstream.JetStream, *telemetrytest.Capture) {
	t.Helper()
	tel := telemetrytest.New(t, service)
	opts := broker.Options{Auth: broker.Auth{User: service, Password: loadProjectEnv(t, strings.ToUpper(service)+"_NATS_PASSWORD")}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nc, js, err := broker.Connect(ctx, url, "loudly-"+service, tel.Telemetry, events.Streams, opts)
	if err != nil {
		t.Fatalf("connect as %s: %v", service, err)
	}
	t.Cleanup(nc.Close)
	return nc, js, tel
}

func loadProjectEnv(t *testing.T, name string) string {
	t.Helper()
	v, ok := readEnv(t)[name]
	if !ok {
		t.Fatalf("%s is not in %s", name, envFile)
	}
	return v
}

// waitViolation waits for the client to have counted and logged the server's refusal of
// op on subject.
func waitViolation(t *testing.T, tel *telemetrytest.Capture, op, subject string) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, fmt.Sprintf("the refused %s to %s logged and counted", op, subject), func() bool {
		logged := false
		for _, l := range violationLogs(tel) {
			logged = logged || l["level"] == "ERROR" && l["operation"] == op && l["subject"] == subject
		}
		return logged && tel.CounterValue(t, "loudly.nats.permission_violations", map[string]string{"operation": op}) > 0
	})
}

func violationLogs(tel *telemetrytest.Capture) []map[string]any {
	var out []map[string]any
	for _, l := range tel.Logs() {
		if strings.Contains(fmt.Sprint(l["msg"]), "permissions violation") {
			out = append(out, l)
		}
	}
	return out
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// Every node of the cluster profile reads the same users (cluster.conf includes
// auth.conf) with the passwords the compose files give it.
func TestClusterConfHasTheSameUsers(t *testing.T) {
	project := loadProject(t)
	single, err := server.ProcessConfigFile(setPasswords(t, project.Services["nats"].Environment, "nats/auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	cluster := loadCluster(t)
	for _, node := range []string{"nats", "nats-2", "nats-3"} {
		for k, v := range project.Services["nats"].Environment {
			if got := cluster.Services[node].Environment[k]; got == nil || *got != *v {
				t.Errorf("%s: %s=%v, want %q as on the single server", node, k, deref(got), *v)
			}
		}
		t.Setenv("NATS_SERVER_NAME", node)
		opts, err := server.ProcessConfigFile(setPasswords(t, cluster.Services[node].Environment, "nats/cluster.conf"))
		if err != nil {
			t.Fatalf("%s: cluster.conf: %v", node, err)
		}
		if len(opts.Users) != len(single.Users) || len(opts.Users) == 0 {
			t.Fatalf("%s: %d users, the single server %d", node, len(opts.Users), len(single.Users))
		}
		for i, u := range opts.Users {
			if s := single.Users[i]; u.Username != s.Username || u.Password != s.Password || (u.Permissions == nil) != (s.Permissions == nil) {
				t.Errorf("%s: user %s differs from the single server's %s", node, u.Username, s.Username)
			}
		}
	}
}

// setPasswords sets a nats container's environment for the test and returns conf.
func setPasswords(t *testing.T, environment types.MappingWithEquals, conf string) string {
	t.Helper()
	for k, v := range environment {
		if v != nil && strings.HasSuffix(k, "_NATS_PASSWORD") {
			t.Setenv(k, *v)
		}
	}
	return conf
}

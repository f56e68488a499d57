package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"loudly/internal/testenv"
	"loudly/services/events"
)

// fault is one fault of the campaign: inject breaks something a few seconds into the
// load, and returns once it has been repaired.
type fault struct {
	name   string
	inject func(t *testing.T, e *campaignEnv)
}

// campaignEnv is the pipeline a fault acts on: a three-node JetStream cluster with R3
// streams, a PostgreSQL server the test owns, the order service and two inventory
// replicas, all real processes.
type campaignEnv struct {
	cluster   *testenv.NATSCluster
	pg        *testenv.PostgresServer
	bin       string
	env       []string
	order     *process
	inventory []*process
}

// TestFaultCampaign runs the standard load (hot SKUs, LIMITED-001, unknown SKUs, 2%
// poison) through the clustered pipeline once per fault and checks the accounting of
// `loadtest -verify`: every accepted order final, none reserved twice, every poison event
// dead-lettered. DESIGN.md, "Scale-out": each fault must lose nothing and apply nothing
// twice.
func TestFaultCampaign(t *testing.T) {
	bin := buildServices(t)
	faults := []fault{
		{"ORDERS stream leader shut down", func(t *testing.T, e *campaignEnv) {
			i := e.cluster.WaitStreamLeader(events.StreamOrders)
			e.cluster.Stop(i)
			time.Sleep(5 * time.Second)
			e.cluster.Start(i)
		}},
		{"meta leader shut down", func(t *testing.T, e *campaignEnv) {
			i := e.cluster.WaitMetaLeader()
			e.cluster.Stop(i)
			time.Sleep(5 * time.Second)
			e.cluster.Start(i)
		}},
		{"one NATS node cut off for 30s", func(t *testing.T, e *campaignEnv) {
			i := e.cluster.WaitStreamLeader(events.StreamInventory)
			e.cluster.Isolate(i)
			time.Sleep(30 * time.Second)
			e.cluster.Heal(i)
		}},
		{"an inventory replica killed with SIGKILL, then restarted", func(t *testing.T, e *campaignEnv) {
			e.inventory[0].kill(t)
			time.Sleep(3 * time.Second)
			e.inventory[0] = e.start(t, "inventory")
		}},
		{"PostgreSQL restarted", func(t *testing.T, e *campaignEnv) {
			e.pg.Restart()
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			e := newCampaignEnv(t, bin)
			cfg := config{
				URL: "http://" + e.order.addr, NATSURL: e.cluster.URLs(),
				Rate: 60, Duration: 15 * time.Second, Poison: 0.02,
				Verify: true, Timeout: 3 * time.Minute, Concurrency: 32,
			}
			repaired := make(chan time.Time, 1)
			go func() {
				time.Sleep(4 * time.Second)
				f.inject(t, e)
				repaired <- time.Now()
			}()
			s, err := run(t.Context(), cfg, testWriter{t}, testWriter{t})
			if err != nil {
				t.Errorf("run: %v", err)
			}
			healed := <-repaired
			twice := e.reservedTwice(t)
			t.Logf("fault %q: accepted=%d lost=%d applied_twice=%d dead_lettered=%d/%d final_after_repair=%s",
				f.name, s.Accepted, s.Lost, twice, s.DeadLettered, s.PoisonSent, time.Since(healed).Round(100*time.Millisecond))
			if s.Lost != 0 || s.Unexpected != 0 || twice != 0 {
				t.Errorf("lost %d, unexpected %d, reserved twice %d: want 0 of each", s.Lost, s.Unexpected, twice)
			}
			if s.Accepted == 0 || s.DeadLettered != s.PoisonSent {
				t.Errorf("accepted %d, dead-lettered %d of %d poison events", s.Accepted, s.DeadLettered, s.PoisonSent)
			}
		})
	}
}

func newCampaignEnv(t *testing.T, bin string) *campaignEnv {
	t.Helper()
	e := &campaignEnv{cluster: testenv.StartNATSCluster(t), pg: testenv.StartPostgres(t), bin: bin}
	e.env = []string{
		"DATABASE_URL=" + e.pg.DSN(), "NATS_URL=" + e.cluster.URLs(), "STREAM_REPLICAS=3",
		"LOG_LEVEL=warn", "SETTLEMENT_DEADLINE=10s", "RECONCILE_INTERVAL=1s", "SHUTDOWN_TIMEOUT=10s",
		"CONSUMER_ACK_WAIT=5s", "CONSUMER_MAX_DELIVER=30", "CONSUMER_BACKOFF_MAX=2s",
	}
	e.order = e.start(t, "order")
	e.inventory = []*process{e.start(t, "inventory"), e.start(t, "inventory")}
	return e
}

// start runs one replica of a service and waits until it is ready.
func (e *campaignEnv) start(t *testing.T, service string) *process {
	t.Helper()
	p := startService(t, filepath.Join(e.bin, service), e.env)
	p.waitReady(t, 60*time.Second)
	return p
}

// reservedTwice counts the orders inventory reserved more than once.
func (e *campaignEnv) reservedTwice(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.pg.DirectDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT order_id FROM inventory.reservations
		GROUP BY order_id HAVING count(*) > 1) AS twice`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// kill ends the process with SIGKILL: no shutdown, no release of what it holds.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// testWriter sends a run's output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(b))
	return len(b), nil
}

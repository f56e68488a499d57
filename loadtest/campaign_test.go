package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"loudly/internal/testenv"
	"loudly/services/events"
)

// fault is one fault of the campaign: inject breaks something a few seconds into the
// load, and returns once it has been repaired.
type fault struct {
	name   string
	orders int           // order service replicas; 0 means 1
	load   time.Duration // how long the load runs; 0 means campaignLoad
	inject func(t *testing.T, e *campaignEnv)
	// check, when set, asserts what this fault in particular must show, after the run.
	check func(t *testing.T, e *campaignEnv)
	// pair runs PostgreSQL as a primary and a synchronous standby (testenv.PostgresPair)
	// the services reach through a multi-host DATABASE_URL, instead of one server.
	pair bool
	// partitioned starts the first inventory replica on a PostgreSQL proxy of its own
	// (campaignEnv.partition), which the fault can stall while the others work.
	partitioned bool
}

// campaignLoad is how long the load runs around a fault, unless the fault says otherwise.
const campaignLoad = 15 * time.Second

// campaignEnv is the pipeline a fault acts on: a three-node JetStream cluster with R3
// streams, a PostgreSQL server the test owns, the order service (one replica, or more
// behind a round-robin proxy) and two inventory replicas, all real processes.
type campaignEnv struct {
	cluster   *testenv.NATSCluster
	pg        *testenv.PostgresServer // nil when pair is set
	pair      *testenv.PostgresPair
	partition *testenv.Proxy // the first inventory replica's way to PostgreSQL, when the fault asks for it
	// killed is when the fault killed a primary, once per failover, for the failover times.
	killed    []time.Time
	bin       string
	env       []string
	orders    []*process
	url       string // where the load goes: the order replica, or the proxy in front of them
	inventory []*process
}

// campaignRow is one fault's line of the campaign's table.
type campaignRow struct {
	fault                            string
	accepted, lost, twice, published int
	deadLettered, poison             int
	recovery                         time.Duration
	note                             string // what this fault in particular measured
}

// TestFaultCampaign runs the standard load (hot SKUs, LIMITED-001, unknown SKUs, 2%
// poison) through the clustered pipeline once per fault and checks the accounting of
// `loadtest -verify`: every accepted order final, none reserved twice, every poison event
// dead-lettered — and audits both outboxes against their streams: every event stored
// once, at the sequence its row recorded, nothing published twice past the duplicate
// window. docs/design.md, "Scale-out": each fault must lose nothing and apply nothing twice.
// The test log ends with one table of every fault's figures.
func TestFaultCampaign(t *testing.T) {
	bin := buildServices(t)
	faults := []fault{
		{name: "ORDERS stream leader shut down", inject: func(t *testing.T, e *campaignEnv) {
			i := e.cluster.WaitStreamLeader(events.StreamOrders)
			e.cluster.Stop(i)
			time.Sleep(5 * time.Second)
			e.cluster.Start(i)
		}},
		{name: "meta leader shut down", inject: func(t *testing.T, e *campaignEnv) {
			i := e.cluster.WaitMetaLeader()
			e.cluster.Stop(i)
			time.Sleep(5 * time.Second)
			e.cluster.Start(i)
		}},
		{name: "one NATS node cut off for 30s", inject: func(t *testing.T, e *campaignEnv) {
			i := e.cluster.WaitStreamLeader(events.StreamInventory)
			e.cluster.Isolate(i)
			time.Sleep(30 * time.Second)
			e.cluster.Heal(i)
		}},
		{name: "an inventory replica killed with SIGKILL, then restarted", inject: func(t *testing.T, e *campaignEnv) {
			e.inventory[0].kill(t)
			time.Sleep(3 * time.Second)
			e.inventory[0] = e.start(t, "inventory")
		}},
		{name: "PostgreSQL restarted", inject: func(t *testing.T, e *campaignEnv) {
			e.pg.Restart()
		}},
		// The load outlasts the outage, so orders are accepted before, refused during and
		// accepted again after it.
		{name: "PostgreSQL connections cut for 30s", load: 40 * time.Second, inject: func(t *testing.T, e *campaignEnv) {
			<-e.pg.CutFor(30 * time.Second)
		}},
		// Two order replicas claim rows of one outbox table (FOR UPDATE SKIP LOCKED) while
		// the leader of the stream they publish to goes away: a publish without a PubAck
		// is retried, and the stream must still hold each event once (the audit of every
		// fault checks it), at the sequence its row recorded.
		{name: "two outbox relays racing through an ORDERS leader change", orders: 2,
			inject: func(t *testing.T, e *campaignEnv) {
				i := e.cluster.WaitStreamLeader(events.StreamOrders)
				e.cluster.Stop(i)
				time.Sleep(5 * time.Second)
				e.cluster.Start(i)
			},
			check: func(t *testing.T, e *campaignEnv) {
				for _, o := range e.orders {
					n := metricSum(t, o, "loudly_outbox_published_total", "table", "orders.outbox")
					t.Logf("order replica at %s published %.0f outbox rows", o.addr, n)
					if n == 0 {
						t.Errorf("order replica at %s published no row: the relays did not race", o.addr)
					}
				}
			}},
		// PostgreSQL as a primary and a synchronous standby; the services reach them through
		// DATABASE_URL=postgres://primary,standby/...?target_session_attrs=read-write. The
		// test plays the failover manager: two seconds to decide, then pg_ctl promote.
		{name: "PostgreSQL primary killed (SIGKILL), standby promoted", pair: true, load: 30 * time.Second,
			inject: func(t *testing.T, e *campaignEnv) {
				e.failover(2 * time.Second)
			}},
		{name: "PostgreSQL failover, old primary rewound as standby, failover back", pair: true, load: 40 * time.Second,
			inject: func(t *testing.T, e *campaignEnv) {
				e.failover(2 * time.Second)
				e.pair.Rejoin()
				time.Sleep(5 * time.Second)
				e.failover(2 * time.Second)
				e.pair.Rejoin()
			}},
		// With its only synchronous standby gone, the primary's commits wait for it:
		// every DB wait of the services is bounded (DB_TIMEOUT), so accepts fail with 503
		// and consumers redeliver instead of hanging, loudly.db.timeouts counts the waits
		// (alert LoudlyDatabaseStalled), and everything resumes when the standby is back.
		{name: "PostgreSQL synchronous standby killed for 20s", pair: true, load: 40 * time.Second,
			inject: func(t *testing.T, e *campaignEnv) {
				e.pair.KillStandby()
				time.Sleep(20 * time.Second)
				e.pair.RestartStandby()
			},
			check: func(t *testing.T, e *campaignEnv) {
				var n float64
				for _, p := range append(slices.Clone(e.orders), e.inventory...) {
					n += metricSum(t, p, "loudly_db_timeouts_total", "", "")
				}
				t.Logf("DB waits that timed out while the standby was gone: %.0f", n)
				if n == 0 {
					t.Error("no DB wait timed out while commits waited for a lost synchronous standby")
				}
			}},
		// Not a clean cut: the first inventory replica's packets to PostgreSQL stop for
		// 20 s, nothing is closed or reset, while the database serves everyone else.
		{name: "an inventory replica partitioned from PostgreSQL for 20s (packets held, no reset)", partitioned: true, load: 40 * time.Second,
			inject: func(t *testing.T, e *campaignEnv) {
				healed := e.partition.StallFor(20 * time.Second)
				if err := ping(e.pg.DirectDSN()); err != nil {
					t.Errorf("the database is down for the others during the partition: %v", err)
				}
				<-healed
			},
			check: func(t *testing.T, e *campaignEnv) {
				n := metricSum(t, e.inventory[0], "loudly_db_timeouts_total", "", "")
				t.Logf("DB waits of the partitioned replica that timed out: %.0f", n)
				if n == 0 {
					t.Error("the partitioned replica's DB waits did not time out")
				}
			}},
	}
	var table []campaignRow
	defer func() { t.Log("fault campaign:\n" + campaignTable(table)) }()
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			e := newCampaignEnv(t, bin, max(f.orders, 1), f)
			load := f.load
			if load == 0 {
				load = campaignLoad
			}
			cfg := config{
				URL: e.url, NATSURL: e.cluster.URLs(),
				Rate: 60, Duration: load, Poison: 0.02,
				Verify: true, Timeout: 3 * time.Minute, Concurrency: 32,
			}
			repaired := make(chan time.Time, 1)
			go func() {
				time.Sleep(4 * time.Second)
				f.inject(t, e)
				repaired <- time.Now()
			}()
			s, err := run(t.Context(), cfg, testWriter{t}, testWriter{t})
			ended := time.Now()
			if err != nil {
				t.Errorf("run: %v", err)
			}
			// Negative when every order was final before the repair: the pipeline went on
			// around the fault.
			recovery := ended.Sub(<-repaired)
			twice := e.reservedTwice(t)
			audits := e.auditOutboxes(t)
			row := campaignRow{fault: f.name, accepted: s.Accepted, lost: s.Lost, twice: twice,
				deadLettered: s.DeadLettered, poison: s.PoisonSent, recovery: recovery}
			for _, a := range audits {
				row.lost += a.missing
				row.published += a.twice
			}
			table = append(table, row)
			t.Logf("fault %q: accepted=%d lost=%d applied_twice=%d published_twice=%d dead_lettered=%d/%d final_after_repair=%s; %s",
				f.name, s.Accepted, row.lost, twice, row.published, s.DeadLettered, s.PoisonSent, recoveryTime(recovery), audits)
			if s.Lost != 0 || s.Unexpected != 0 || twice != 0 {
				t.Errorf("lost %d, unexpected %d, reserved twice %d: want 0 of each", s.Lost, s.Unexpected, twice)
			}
			if s.Accepted == 0 || s.DeadLettered != s.PoisonSent {
				t.Errorf("accepted %d, dead-lettered %d of %d poison events", s.Accepted, s.DeadLettered, s.PoisonSent)
			}
			for _, a := range audits {
				if a.twice != 0 || a.missing != 0 || a.misplaced != 0 {
					t.Errorf("%s: want every row sent in the stream once, where the row says", a)
				}
			}
			if f.check != nil {
				f.check(t, e)
			}
			for i, killed := range e.killed {
				d := e.firstSettledAfter(t, killed)
				note := "kill→first settled on new primary " + d.Round(100*time.Millisecond).String()
				if i > 0 {
					note = ", back " + d.Round(100*time.Millisecond).String()
				}
				table[len(table)-1].note += note
				t.Logf("fault %q: failover %d: first order settled on the new primary %s after the kill", f.name, i+1, d.Round(10*time.Millisecond))
			}
		})
	}
}

// campaignTable lays the rows out as one block the lead can paste.
func campaignTable(rows []campaignRow) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\taccepted\tlost\tapplied twice\tpublished twice\tdead-lettered\tfinal after repair\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d/%d\t%s\t%s\n", r.fault, r.accepted, r.lost, r.twice, r.published,
			r.deadLettered, r.poison, recoveryTime(r.recovery), r.note)
	}
	tw.Flush()
	return b.String()
}

// recoveryTime is how long after the repair the last order was final.
func recoveryTime(d time.Duration) string {
	if d <= 0 {
		return "0 (all final before the repair)"
	}
	return d.Round(100 * time.Millisecond).String()
}

func newCampaignEnv(t *testing.T, bin string, orders int, f fault) *campaignEnv {
	t.Helper()
	e := &campaignEnv{cluster: testenv.StartNATSCluster(t), bin: bin}
	var dsn string
	if f.pair {
		e.pair = testenv.StartPostgresPair(t)
		dsn = e.pair.DSN()
	} else {
		e.pg = testenv.StartPostgres(t)
		dsn = e.pg.DSN()
	}
	e.env = []string{
		"DATABASE_URL=" + dsn, "NATS_URL=" + e.cluster.URLs(), "STREAM_REPLICAS=3",
		"LOG_LEVEL=warn", "SETTLEMENT_DEADLINE=10s", "RECONCILE_INTERVAL=1s", "SHUTDOWN_TIMEOUT=10s",
		"CONSUMER_ACK_WAIT=5s", "CONSUMER_MAX_DELIVER=30", "CONSUMER_BACKOFF_MAX=2s",
	}
	var targets []string
	for range orders {
		o := e.start(t, "order")
		e.orders = append(e.orders, o)
		targets = append(targets, "http://"+o.addr)
	}
	e.url = targets[0]
	if orders > 1 {
		e.url = roundRobin(t, targets)
	}
	first := func(t *testing.T, service string) *process { return e.start(t, service) }
	if f.partitioned {
		var own string
		e.partition, own = testenv.ProxyDSN(t, e.pg.DirectDSN())
		first = func(t *testing.T, service string) *process { return e.start(t, service, "DATABASE_URL="+own) }
	}
	e.inventory = []*process{first(t, "inventory"), e.start(t, "inventory")}
	return e
}

// directDSN reaches the database without a proxy: the server, or the pair's primary now.
func (e *campaignEnv) directDSN() string {
	if e.pair != nil {
		return e.pair.PrimaryDSN()
	}
	return e.pg.DirectDSN()
}

// failover kills the pair's primary and, after detect (the failover manager's time to
// decide), promotes the standby; e.killed records the kill.
func (e *campaignEnv) failover(detect time.Duration) {
	e.pair.KillPrimary()
	// Once every process of the old primary is gone: a commit it made just before still
	// counts as its own, and replicated synchronously, would be found on the new primary.
	e.killed = append(e.killed, time.Now())
	time.Sleep(detect)
	e.pair.Promote()
}

// firstSettledAfter is the time from a kill to the first order settled after it, which
// only the new primary can have written (the old one was dead from the kill on; settled_at
// is the settling transaction's start, on the same clock).
func (e *campaignEnv) firstSettledAfter(t *testing.T, killed time.Time) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.directDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var first *time.Time
	if err := conn.QueryRow(ctx, `SELECT min(settled_at) FROM orders.orders WHERE settled_at > $1`, killed).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if first == nil {
		t.Error("no order settled after the kill")
		return 0
	}
	return first.Sub(killed)
}

// roundRobin starts an HTTP proxy that hands requests to targets in turn, as a load
// balancer in front of replicas would, and returns its URL.
func roundRobin(t *testing.T, targets []string) string {
	t.Helper()
	urls := make([]*url.URL, len(targets))
	for i, s := range targets {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		urls[i] = u
	}
	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(urls[(next.Add(1)-1)%uint64(len(urls))])
	}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL
}

// start runs one replica of a service and waits until it is ready; env overrides the
// environment's variables.
func (e *campaignEnv) start(t *testing.T, service string, env ...string) *process {
	t.Helper()
	p := startService(t, filepath.Join(e.bin, service), append(slices.Clip(e.env), env...))
	p.waitReady(t, 60*time.Second)
	return p
}

// reservedTwice counts the orders inventory reserved more than once.
func (e *campaignEnv) reservedTwice(t *testing.T) int {
	t.Helper()
	return reservedTwice(t, e.directDSN())
}

// reservedTwice counts the orders inventory reserved more than once in the database at dsn.
func reservedTwice(t testing.TB, dsn string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
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

// outboxAudit compares an outbox table with the stream its relays publish to.
type outboxAudit struct {
	table, stream string
	sent          int // rows marked sent
	unsent        int // rows still waiting (counted in missing too)
	twice         int // event ids the stream holds more than once: a copy past the duplicate window
	missing       int // rows not in the stream, sent or not
	misplaced     int // rows sent whose recorded stream sequence is not where their event is
}

func (a outboxAudit) String() string {
	return fmt.Sprintf("%s→%s: %d rows sent, %d unsent, %d published twice, %d missing, %d at another sequence than recorded",
		a.table, a.stream, a.sent, a.unsent, a.twice, a.missing, a.misplaced)
}

// auditOutboxes waits until both outboxes have nothing left to send, then checks every
// row against its stream: each event is stored once (Nats-Msg-Id = event id), at the
// sequence the row recorded.
func (e *campaignEnv) auditOutboxes(t *testing.T) []outboxAudit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.directDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	js := testenv.JetStream(t, e.cluster.URLs(), nats.Name("campaign-audit"))
	var out []outboxAudit
	// A node that was stopped or cut off may still be catching up; read what the cluster
	// agrees on.
	e.cluster.WaitStreamCurrent(events.StreamOrders)
	e.cluster.WaitStreamCurrent(events.StreamInventory)
	for _, pair := range [][2]string{{"orders.outbox", events.StreamOrders}, {"inventory.outbox", events.StreamInventory}} {
		a := outboxAudit{table: pair[0], stream: pair[1]}
		drained, stop := context.WithTimeout(ctx, 30*time.Second)
		for {
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+a.table+` WHERE sent_at IS NULL`).Scan(&a.unsent); err != nil {
				t.Fatal(err)
			}
			if a.unsent == 0 || !sleep(drained, 200*time.Millisecond) {
				break
			}
		}
		stop()
		// Right after a fault the cluster may still be electing: read again until it answers.
		stored, err := streamMsgIDs(ctx, js, a.stream)
		for deadline := time.Now().Add(30 * time.Second); err != nil && time.Now().Before(deadline); {
			sleep(ctx, 500*time.Millisecond)
			stored, err = streamMsgIDs(ctx, js, a.stream)
		}
		if err != nil {
			t.Fatalf("reading stream %s: %v", a.stream, err)
		}
		rows, err := conn.Query(ctx, `SELECT event_id::text, sent_at IS NOT NULL, coalesce(stream_seq, 0) FROM `+a.table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			var sent bool
			var seq uint64
			if err := rows.Scan(&id, &sent, &seq); err != nil {
				t.Fatal(err)
			}
			seqs := stored[id]
			switch {
			case len(seqs) == 0:
				a.missing++
			case len(seqs) > 1:
				a.twice++
			}
			if sent {
				a.sent++
				if len(seqs) > 0 && seqs[0] != seq {
					a.misplaced++
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// streamMsgIDs reads a whole stream and returns the sequences at which each Nats-Msg-Id
// is stored.
func streamMsgIDs(ctx context.Context, js jetstream.JetStream, stream string) (map[string][]uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	last := s.CachedInfo().State.LastSeq
	ids := map[string][]uint64{}
	if last == 0 {
		return ids, nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var seen uint64
	for {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			id := m.Headers().Get(jetstream.MsgIDHeader)
			ids[id] = append(ids[id], meta.Sequence.Stream)
			seen = meta.Sequence.Stream
			if seen >= last {
				return ids, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("no message after sequence %d of %d", seen, last)
		}
	}
}

// metricSum scrapes a service's /metrics and sums the samples of a counter or gauge
// family whose label has the given value ("" label: every sample).
func metricSum(t testing.TB, p *process, family, label, value string) float64 {
	t.Helper()
	fams := scrape(t, p)
	var sum float64
	for _, m := range fams[family].GetMetric() {
		if label != "" && !hasLabel(m, label, value) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// scrape reads a service's /metrics in the Prometheus text format.
func scrape(t testing.TB, p *process) map[string]*dto.MetricFamily {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", p.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", p.name, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", p.name, err)
	}
	return fams
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

// ping checks that the database at dsn answers.
func ping(dsn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

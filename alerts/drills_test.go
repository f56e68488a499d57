package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/internal/testenv"
	"loudly/pkg/faults"
	"loudly/pkg/telemetry"
	"loudly/services/drill"
	"loudly/services/inventory/inventory"
	"loudly/services/order/order"
)

// Every drill of the catalog, against the real services under load and a real Prometheus
// evaluating the Fast-profile rules: at least one alert the drill teaches fires, the
// alerts it must not trip stay quiet, and once the fault is gone every accepted order
// reaches a final status — but for silent-skip, whose lost orders are exactly the ones the
// reconciler reports.
//
// The drills run in three environments side by side (each: its own database, broker, both
// services, load and Prometheus), sequentially within one, grouped so a drill's tail
// cannot be mistaken for the next drill's signal: the dead-letter drills together; the
// business drills with silent-skip last, in a group with no invalid event and no dead
// letter at all, so that its quiet alerts staying quiet means something; outbox-stall,
// whose alert needs its backlog a minute old whatever the profile, beside ack-timeout, the
// only drill that wants a short ack wait. Before each drill the test waits until none of
// its alerts is pending or firing. The summary it logs gives each drill's time to detect.
var drillGroups = []drillGroup{
	// The compose demo's inventory settings for ack-timeout (a short ack wait, 16 handlers),
	// with the ack wait cut from 10s to 2s.
	{name: "pipeline", env: map[string]string{"CONSUMER_ACK_WAIT": "2s", "CONSUMER_CONCURRENCY": "16"}, faultExpiry: true, drills: []drillCase{
		// LoudlyOutboxBacklogGrowing compares the oldest unpublished event's age with a
		// fixed 60s (thresholds do not scale with the profile), so it cannot fire before
		// the stall is a minute old.
		{name: drill.OutboxStall, within: 2 * time.Minute},
		// A stall holds the message past the 2s ack wait (ack wait + 1s), so the broker
		// redelivers it and inventory decides the redelivery a duplicate.
		{name: drill.AckTimeout, check: stockMovedOnce},
	}},
	{name: "dead-letters", drills: []drillCase{
		{name: drill.PoisonFlood},
		{name: drill.SchemaDrift},
		// Retries outlast the drill (CONSUMER_MAX_DELIVER 30, backoff ≤ 2s), as the
		// production settings (10 deliveries, backoff up to 30s: about 2 minutes) outlast
		// the production windows; so the consumer holds the orders instead of failing
		// them, and they settle once the database is back.
		{name: drill.DBOutage},
	}},
	{name: "business", drills: []drillCase{
		{name: drill.StockOut},
		{name: drill.DBLatency},
		{name: drill.SilentSkip, all: true, lastInGroup: true},
	}},
}

// drillSettings are the services' settings in every group: short reconciliation and
// deadline so the business alerts move in seconds, short backoff so recovery does too.
var drillSettings = map[string]string{
	"RECONCILE_INTERVAL": "1s", "SETTLEMENT_DEADLINE": "4s", "SHUTDOWN_TIMEOUT": "5s",
	"CONSUMER_BACKOFF_BASE": "200ms", "CONSUMER_BACKOFF_MAX": "2s", "CONSUMER_MAX_DELIVER": "30",
	"DRILLS": "enabled",
}

const (
	drillRate   = 30               // orders/s, as the live test
	detectLimit = 75 * time.Second // default bound on time to detect
	settleLimit = 60 * time.Second // bound on recovery: every accepted order final
	cleanLimit  = 60 * time.Second // bound on a previous drill's alerts resolving
)

type drillGroup struct {
	name        string
	env         map[string]string
	faultExpiry bool // run the fault-expiry check first
	drills      []drillCase
}

type drillCase struct {
	name   string
	within time.Duration // bound on time to detect; 0: detectLimit
	// all: every alert of the drill must fire (silent-skip), not just one.
	all bool
	// lastInGroup: the load stops after this drill, so the books can be closed exactly.
	lastInGroup bool
	check       func(t *testing.T, e *drillEnv)
}

// drillResult is one line of the summary the test logs.
type drillResult struct {
	group, drill string
	fired        map[string]time.Duration // alert → time to firing
	detectedBy   string
	recovered    time.Duration // fault stopped → every accepted order final
	note         string
}

func TestDrills_FireTheirAlertsAndLoseNothing(t *testing.T) {
	covered := map[string]int{}
	for _, g := range drillGroups {
		for _, d := range g.drills {
			covered[d.name]++
		}
	}
	for _, s := range drill.Catalog {
		if covered[s.Name] != 1 {
			t.Fatalf("drill %s runs %d times here; every drill of the catalog must run once", s.Name, covered[s.Name])
		}
	}

	begin := time.Now()
	var mu sync.Mutex
	var results []drillResult
	t.Run("groups", func(t *testing.T) {
		for _, g := range drillGroups {
			t.Run(g.name, func(t *testing.T) {
				t.Parallel()
				e := startDrillEnv(t, g)
				if g.faultExpiry {
					t.Run("fault expiry", e.checkFaultExpiry)
				}
				for _, d := range g.drills {
					ok := t.Run(d.name, func(t *testing.T) {
						r := e.runDrill(t, d)
						r.group = g.name
						mu.Lock()
						results = append(results, r)
						mu.Unlock()
					})
					if !ok {
						break // the next drill would start on this one's wreckage
					}
				}
			})
		}
	})

	var b strings.Builder
	fmt.Fprintf(&b, "%d drills in %s:\n", len(results), time.Since(begin).Round(time.Second))
	for _, r := range results {
		var fired []string
		spec, _ := drill.Lookup(r.drill)
		for _, a := range spec.Alerts {
			if d, ok := r.fired[a]; ok {
				fired = append(fired, fmt.Sprintf("%s %s", a, d.Round(100*time.Millisecond)))
			}
		}
		fmt.Fprintf(&b, "  %-13s %-13s detected by %s; fired: %s; recovered in %s%s\n", r.drill, "("+r.group+")",
			r.detectedBy, strings.Join(fired, ", "), r.recovered.Round(100*time.Millisecond), r.note)
	}
	t.Log(b.String())
}

// drillEnv is one environment: both services on their own database and broker, the load,
// and a Prometheus evaluating the Fast rules.
type drillEnv struct {
	name     string
	js       jetstream.JetStream
	db       *pgxpool.Pool
	prom     *testenv.Prometheus
	orderURL string

	loadCancel context.CancelFunc
	loadDone   chan struct{}
	mu         sync.Mutex
	accepted   []acceptedOrder
}

type acceptedOrder struct {
	id string
	at time.Time
}

func startDrillEnv(t *testing.T, g drillGroup) *drillEnv {
	start := time.Now()
	dsn, natsURL := testenv.Postgres(t), testenv.EmbeddedNATS(t).URL()
	vars := map[string]string{"DATABASE_URL": dsn, "NATS_URL": natsURL, "HTTP_ADDR": "127.0.0.1:0"}
	for _, m := range []map[string]string{drillSettings, g.env} {
		for k, v := range m {
			vars[k] = v
		}
	}
	getenv := func(k string) string { return vars[k] }

	invCfg, err := inventory.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.New(context.Background(), invCfg, quietTelemetry(t, "inventory"))
	if err != nil {
		t.Fatalf("start inventory: %v", err)
	}
	testenv.RunService(t, "inventory", 15*time.Second, inv.Run, inv.Close)
	orderCfg, err := order.ConfigFromEnv(getenv)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := order.New(context.Background(), orderCfg, quietTelemetry(t, "order"))
	if err != nil {
		t.Fatalf("start order: %v", err)
	}
	testenv.RunService(t, "order", 15*time.Second, svc.Run, svc.Close)

	e := &drillEnv{name: g.name, orderURL: "http://" + svc.Addr(), loadDone: make(chan struct{})}
	e.prom = fastPrometheus(t, svc.Addr(), inv.Addr())
	if e.db, err = pgxpool.New(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.db.Close)
	e.js = testenv.JetStream(t, natsURL)
	e.prom.WaitTargetsUp(t, 15*time.Second)
	checkRulesLoaded(t, e.prom, len(Rules(Fast)))

	ctx, cancel := context.WithCancel(context.Background())
	e.loadCancel = cancel
	go e.load(ctx)
	t.Cleanup(e.stopLoad)
	// Healthy traffic long enough to fill the rules' windows (10s), and nothing firing.
	testenv.WaitFor(t, 45*time.Second, "orders settling, and the windows filled", func() bool {
		time.Sleep(500 * time.Millisecond)
		return time.Since(start) > 15*time.Second && e.value(t, `sum(loudly_orders_settled_total)`) > 0
	})
	active := e.alerts(t)
	for _, s := range drill.Catalog {
		for _, a := range slices.Concat(s.Alerts, s.Quiet) {
			if active[a] != "" {
				t.Fatalf("%s %s on healthy traffic (active: %v)", a, active[a], active)
			}
		}
	}
	t.Logf("%s: environment up and healthy in %s", g.name, time.Since(start).Round(time.Second))
	return e
}

// quietTelemetry is the services' real telemetry setup with warnings and errors only in
// the log (kept for a failure message), and traces recorded nowhere: minutes of load
// must not fill the test's memory.
func quietTelemetry(t *testing.T, name string) *telemetry.Telemetry {
	logs := &logTail{}
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: name, LogWriter: logs, LogLevel: slog.LevelWarn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tel.Shutdown(ctx)
		if t.Failed() {
			t.Logf("%s: last log lines:\n%s", name, logs)
		}
	})
	return tel
}

// logTail keeps the last lines written to it.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	if len(l.lines) > 40 {
		l.lines = l.lines[len(l.lines)-40:]
	}
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// load posts orders at drillRate until ctx ends, remembering every order accepted; one in
// ten asks for an unknown SKU (rejected, a final status).
func (e *drillEnv) load(ctx context.Context) {
	defer close(e.loadDone)
	client := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(time.Second / drillRate)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, 8)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sku := "BOOK-001"
		if n%10 == 0 {
			sku = "NOPE-1"
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // the API is this slow: skip a beat rather than queue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			body := fmt.Sprintf(`{"customer_id":"c","lines":[{"sku":%q,"quantity":1}]}`, sku)
			req, _ := http.NewRequestWithContext(ctx, "POST", e.orderURL+"/v1/orders", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				return
			}
			defer res.Body.Close()
			var created struct{ ID string }
			if res.StatusCode == http.StatusAccepted && json.NewDecoder(res.Body).Decode(&created) == nil {
				e.mu.Lock()
				e.accepted = append(e.accepted, acceptedOrder{created.ID, time.Now()})
				e.mu.Unlock()
			}
			_, _ = io.Copy(io.Discard, res.Body)
		})
	}
}

func (e *drillEnv) stopLoad() {
	e.loadCancel()
	<-e.loadDone
}

// acceptedBefore lists the orders whose 202 arrived before t.
func (e *drillEnv) acceptedBefore(t time.Time) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for _, o := range e.accepted {
		if o.at.Before(t) {
			ids = append(ids, o.id)
		}
	}
	return ids
}

// alerts maps each pending or firing alert to its most advanced state.
func (e *drillEnv) alerts(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, a := range e.prom.Alerts(t) {
		if name := string(a.Labels["alertname"]); out[name] != "firing" {
			out[name] = string(a.State)
		}
	}
	return out
}

// value is the first value of an instant query, -1 when it has none.
func (e *drillEnv) value(t *testing.T, q string) float64 {
	res := e.prom.Query(t, q)
	if len(res) == 0 {
		return -1
	}
	return float64(res[0].Value)
}

// runDrill waits until none of the drill's alerts is active, starts its fault, waits for
// its alert(s) while checking the quiet ones, stops the fault and checks the books.
func (e *drillEnv) runDrill(t *testing.T, d drillCase) drillResult {
	spec, ok := drill.Lookup(d.name)
	if !ok {
		t.Fatalf("no drill %s", d.name)
	}
	r := drillResult{drill: d.name, fired: map[string]time.Duration{}}
	watched := slices.Concat(spec.Alerts, spec.Quiet)
	testenv.WaitFor(t, cleanLimit, "none of "+strings.Join(watched, ", ")+" active before the drill", func() bool {
		active := e.alerts(t)
		for _, a := range watched {
			if active[a] != "" {
				time.Sleep(time.Second)
				return false
			}
		}
		return true
	})

	ctx := context.Background()
	start := time.Now()
	// At the catalog's intensity, with -for as the game day starts them: it ends by itself
	// should the test die.
	if _, err := drill.Start(ctx, e.js, d.name, "", 0, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := faults.Stop(ctx, e.js, d.name); err != nil {
				t.Errorf("stop %s: %v", d.name, err)
			}
		}
	}
	t.Cleanup(stop)
	within := orDefault(d.within, detectLimit)
	quiet := map[string]bool{}
	checkQuiet := func(active map[string]string) {
		for _, q := range spec.Quiet {
			if active[q] == "firing" && !quiet[q] {
				quiet[q] = true
				t.Errorf("%s fired %s into %s, which must leave it quiet", q, time.Since(start).Round(time.Second), d.name)
			}
		}
	}
	detected := false
	for !detected {
		if time.Since(start) > within {
			t.Fatalf("%s: no expected alert firing within %s (fired: %v; active now: %v)\n%s", d.name, within, r.fired, e.alerts(t), e.diagnose(t))
		}
		time.Sleep(250 * time.Millisecond)
		active := e.alerts(t)
		checkQuiet(active)
		for _, a := range spec.Alerts {
			if _, seen := r.fired[a]; !seen && active[a] == "firing" {
				r.fired[a] = time.Since(start)
				if r.detectedBy == "" {
					r.detectedBy = a
				}
			}
		}
		detected = len(r.fired) > 0 && (!d.all || len(r.fired) == len(spec.Alerts))
	}
	stop()
	stoppedAt := time.Now()
	t.Logf("%s: %s firing after %s (all fired: %v)", d.name, r.detectedBy, r.fired[r.detectedBy].Round(100*time.Millisecond), r.fired)

	if d.name == drill.SilentSkip {
		r.note = e.closeSilentSkipBooks(t, stoppedAt, checkQuiet)
	} else {
		e.waitAllFinal(t, stoppedAt)
	}
	r.recovered = time.Since(stoppedAt)
	if d.check != nil {
		d.check(t, e)
	}
	if d.lastInGroup {
		e.stopLoad()
	}
	return r
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// waitAllFinal is the load test's verification: every order accepted before the fault
// stopped exists and reaches a final status (confirmed, rejected or failed).
func (e *drillEnv) waitAllFinal(t *testing.T, stoppedAt time.Time) {
	ids := e.acceptedBefore(stoppedAt)
	var total, pending int
	testenv.WaitFor(t, settleLimit, fmt.Sprintf("all %d orders accepted before the fault stopped final", len(ids)), func() bool {
		if err := e.db.QueryRow(context.Background(),
			`SELECT count(*), count(*) FILTER (WHERE status = 'pending') FROM orders.orders WHERE id = ANY($1::uuid[])`, ids).
			Scan(&total, &pending); err != nil {
			t.Fatal(err)
		}
		if pending > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		return pending == 0
	})
	if total != len(ids) {
		t.Errorf("%d orders accepted (202), %d in the database: %d lost", len(ids), total, len(ids)-total)
	}
}

// closeSilentSkipBooks is silent-skip's accounting: the load stops; every order accepted
// settles except the skipped ones, which the inventory acked as applied and never
// reserved; and the number of orders still pending in the database equals what the
// reconciler reports (loudly_orders_unsettled, once all of them are past the deadline)
// and the number of applied decisions inventory recorded without a reservation (the skip's
// acks). Meanwhile the quiet alerts stay quiet.
func (e *drillEnv) closeSilentSkipBooks(t *testing.T, stoppedAt time.Time, checkQuiet func(map[string]string)) string {
	e.stopLoad()
	ids := e.acceptedBefore(time.Now().Add(time.Hour))
	var total, pending, skipped, young int
	var unsettled, acks float64
	testenv.WaitFor(t, settleLimit, "the books of silent-skip to balance", func() bool {
		time.Sleep(500 * time.Millisecond)
		checkQuiet(e.alerts(t))
		if err := e.db.QueryRow(context.Background(), `
			SELECT count(*),
			       count(*) FILTER (WHERE o.status = 'pending'),
			       count(*) FILTER (WHERE o.status = 'pending' AND NOT EXISTS
			           (SELECT 1 FROM inventory.reservations r WHERE r.order_id = o.id)),
			       count(*) FILTER (WHERE o.status = 'pending' AND o.created_at > now() - interval '5 seconds')
			FROM orders.orders o WHERE o.id = ANY($1::uuid[])`, ids).Scan(&total, &pending, &skipped, &young); err != nil {
			t.Fatal(err)
		}
		var reserved int
		if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM inventory.reservations WHERE outcome = 'reserved'`).Scan(&reserved); err != nil {
			t.Fatal(err)
		}
		unsettled = e.value(t, `max(loudly_orders_unsettled)`)
		acks = e.value(t, `sum(loudly_decisions_total{job="inventory", stage="consume", outcome="applied", reason="reserved"})`) - float64(reserved)
		return pending > 0 && pending == skipped && young == 0 && unsettled == float64(pending) && acks == float64(pending)
	})
	if total != len(ids) {
		t.Errorf("%d orders accepted (202), %d in the database: %d lost", len(ids), total, len(ids)-total)
	}
	if pending != skipped || unsettled != float64(pending) || acks != float64(pending) {
		t.Errorf("pending in the database %d, of which without any reservation %d; loudly_orders_unsettled %g; applied decisions without a reservation %g: want all equal",
			pending, skipped, unsettled, acks)
	}
	return fmt.Sprintf("; %d of %d orders lost to the skip = loudly_orders_unsettled = applied decisions without a reservation", pending, total)
}

// stockMovedOnce: the ack-timeout drill redelivered committed reservations, and the
// idempotency record made each redelivery a duplicate, so stock moved once per order.
func stockMovedOnce(t *testing.T, e *drillEnv) {
	var inStock, byDecisions int
	if err := e.db.QueryRow(context.Background(), `
		SELECT (SELECT sum(reserved) FROM inventory.stock),
		       (SELECT coalesce(sum((l ->> 'quantity')::int), 0)
		          FROM inventory.reservations r, jsonb_array_elements(r.lines) l WHERE r.outcome = 'reserved')`).
		Scan(&inStock, &byDecisions); err != nil {
		t.Fatal(err)
	}
	dups := e.value(t, `sum(loudly_decisions_total{job="inventory", stage="consume", outcome="duplicate"})`)
	if inStock != byDecisions || dups <= 0 {
		t.Errorf("stock reserved %d, reservations decided %d, duplicate decisions %g: want equal, after some duplicates", inStock, byDecisions, dups)
	}
}

// checkFaultExpiry: a fault started with -for ends by itself, and loudly_fault_active as
// Prometheus scrapes it from both services goes back to 0, with nobody stopping it.
func (e *drillEnv) checkFaultExpiry(t *testing.T) {
	const d = 5 * time.Second
	f, err := drill.Start(context.Background(), e.js, drill.DBLatency, "", 0.05, d)
	if err != nil {
		t.Fatal(err)
	}
	// Started with no -service, the drill acts in its own service (inventory): that one
	// reports it active, and order, which watches the same bucket, reports it off.
	q := `loudly_fault_active{fault="db-latency"}`
	testenv.WaitFor(t, d, "inventory reporting the fault active, order reporting it off", func() bool {
		time.Sleep(200 * time.Millisecond)
		return e.value(t, `max(loudly_fault_active{fault="db-latency", job="inventory"})`) == 0.05 &&
			len(e.prom.Query(t, `loudly_fault_active{fault="db-latency", job="order"} == 0`)) == 1
	})
	testenv.WaitFor(t, d+10*time.Second, "loudly_fault_active back to 0 after -for", func() bool {
		time.Sleep(200 * time.Millisecond)
		return e.value(t, `max(`+q+`)`) == 0 && e.value(t, `min(`+q+`)`) == 0
	})
	if early := time.Until(f.Until); early > 0 {
		t.Errorf("loudly_fault_active was 0 %s before the fault's end", early)
	}
	t.Logf("loudly_fault_active back to 0 %s after the fault's -for ran out", time.Since(f.Until).Round(100*time.Millisecond))
	if active, err := faults.List(context.Background(), e.js); err != nil || len(active) != 0 {
		t.Errorf("faults still active after -for: %+v %v", active, err)
	}
}

// diagnose shows what the pipeline was doing, for a failure message.
func (e *drillEnv) diagnose(t *testing.T) string {
	var b strings.Builder
	for _, q := range []string{
		`sum by (job, outcome, reason) (rate(loudly_decisions_total{stage="consume"}[10s]))`,
		`sum by (job) (rate(loudly_orders_accepted_total[10s]))`,
		`sum by (status) (rate(loudly_orders_settled_total[10s]))`,
		`max by (consumer) (loudly_consumer_pending)`,
		`max by (consumer) (loudly_consumer_ack_pending)`,
		`max by (table) (loudly_outbox_backlog)`,
		`max by (job, fault) (loudly_fault_active) > 0`,
		`max(loudly_orders_unsettled)`,
	} {
		fmt.Fprintf(&b, "%s:\n", q)
		for _, s := range e.prom.Query(t, q) {
			fmt.Fprintf(&b, "  %v %v\n", s.Metric, s.Value)
		}
	}
	return b.String()
}

package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/internal/testenv"
	"loudly/pkg/consumer"
	"loudly/pkg/deadletter"
	"loudly/pkg/envelope"
	"loudly/pkg/telemetry/telemetrytest"
	"loudly/services/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type harness struct {
	svc *Service
	tel *telemetrytest.Capture
	db  *pgxpool.Pool
	nc  *nats.Conn
	js  jetstream.JetStream
}

func config(t *testing.T, dsn, natsURL string, extra map[string]string) Config {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL": dsn, "NATS_URL": natsURL, "HTTP_ADDR": "127.0.0.1:0",
		"CONSUMER_BACKOFF_BASE": "50ms", "CONSUMER_BACKOFF_MAX": "300ms", "SHUTDOWN_TIMEOUT": "5s",
		"OUTBOX_POLL_INTERVAL": "200ms", "DRILLS": "enabled",
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := ConfigFromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newHarness builds the service (New) without running it; run starts it.
func newHarness(t *testing.T, cfg Config, adminDSN string) *harness {
	t.Helper()
	h := &harness{tel: telemetrytest.New(t, "inventory")}
	svc, err := New(context.Background(), cfg, h.tel.Telemetry)
	if err != nil {
		t.Fatalf("start inventory service: %v", err)
	}
	h.svc = svc
	if h.db, err = pgxpool.New(context.Background(), adminDSN); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.db.Close)
	if h.nc, err = nats.Connect(cfg.NATSURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.nc.Close)
	h.js, _ = jetstream.New(h.nc)
	return h
}

func (h *harness) run(t *testing.T) {
	t.Helper()
	testenv.RunService(t, "inventory service", 10*time.Second, h.svc.Run, h.svc.Close)
}

func startInventory(t *testing.T) *harness {
	dsn := testenv.Postgres(t)
	h := newHarness(t, config(t, dsn, testenv.NATS(t), nil), dsn)
	h.run(t)
	return h
}

// publish sends an order.placed event for lines, as the order service's relay would.
func (h *harness) publish(t *testing.T, lines ...events.Line) envelope.Envelope {
	t.Helper()
	env, payload, err := events.New(events.TypeOrderPlaced, newUUID(t), events.OrderPlaced{CustomerID: "c", Lines: lines}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.publishRaw(t, payload, env.ID)
	return env
}

func (h *harness) publishRaw(t *testing.T, payload []byte, msgID string) {
	t.Helper()
	msg := nats.NewMsg(events.SubjectOrderPlaced)
	msg.Data = payload
	if _, err := h.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
}

func newUUID(t *testing.T) string {
	env, _, _ := events.New("x", "", nil, time.Now())
	return env.ID
}

func (h *harness) available(t *testing.T, sku string) int {
	t.Helper()
	var n int
	if err := h.db.QueryRow(context.Background(), `SELECT available FROM inventory.stock WHERE sku = $1`, sku).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// results returns the result events published for orderID.
func (h *harness) results(t *testing.T, orderID string) []envelope.Envelope {
	t.Helper()
	s, err := h.js.Stream(context.Background(), events.StreamInventory)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []envelope.Envelope
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			continue
		}
		env, err := events.Decode(m.Data)
		if err != nil {
			t.Fatalf("inventory published an invalid event: %v", err)
		}
		if env.Key == orderID {
			out = append(out, env)
		}
	}
	return out
}

func (h *harness) waitDecision(t *testing.T, eventID, outcome string) map[string]any {
	t.Helper()
	var got map[string]any
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("a %s decision for event %s", outcome, eventID), func() bool {
		for _, d := range h.tel.Decisions(map[string]string{"stage": "consume", "event_id": eventID, "outcome": outcome}) {
			got = d
			return true
		}
		return false
	})
	return got
}

func TestReserve_DecidesEachOrderAndPublishesItsResult(t *testing.T) {
	h := startInventory(t)
	cases := []struct {
		name      string
		lines     []events.Line
		outcome   string
		reason    string
		result    string
		stockSKU  string
		stockDiff int
	}{
		{"all lines in stock are reserved", []events.Line{{SKU: "BOOK-001", Quantity: 2}, {SKU: "MUG-001", Quantity: 1}},
			"applied", "reserved", events.TypeInventoryReserved, "BOOK-001", -2},
		{"more than the stock is rejected", []events.Line{{SKU: "LIMITED-001", Quantity: 101}},
			"rejected", ReasonInsufficientStock, events.TypeInventoryRejected, "LIMITED-001", 0},
		{"an unknown SKU is rejected", []events.Line{{SKU: "NOPE-1", Quantity: 1}},
			"rejected", ReasonUnknownSKU, events.TypeInventoryRejected, "BOOK-002", 0},
		{"one short line rejects the whole order", []events.Line{{SKU: "SHIRT-M", Quantity: 1}, {SKU: "SOLDOUT-001", Quantity: 1}},
			"rejected", ReasonInsufficientStock, events.TypeInventoryRejected, "SHIRT-M", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.available(t, c.stockSKU)
			env := h.publish(t, c.lines...)
			d := h.waitDecision(t, env.ID, c.outcome)
			if d["reason"] != c.reason || d["settlement"] != "ack" || d["order_id"] != env.Key || d["trace_id"] == nil {
				t.Errorf("decision %v, want reason %s, settlement ack, the order id and a trace id", d, c.reason)
			}
			if diff := h.available(t, c.stockSKU) - before; diff != c.stockDiff {
				t.Errorf("%s stock changed by %d, want %d", c.stockSKU, diff, c.stockDiff)
			}
			testenv.WaitFor(t, 5*time.Second, "the result event", func() bool { return len(h.results(t, env.Key)) == 1 })
			res := h.results(t, env.Key)[0]
			if res.Type != c.result {
				t.Errorf("result %s, want %s", res.Type, c.result)
			}
			if c.result == events.TypeInventoryRejected {
				var r events.InventoryResult
				_ = json.Unmarshal(res.Data, &r)
				if r.Reason != c.reason {
					t.Errorf("result reason %q, want %q", r.Reason, c.reason)
				}
			}
			if n := h.tel.CounterValue(t, "loudly.decisions", map[string]string{"outcome": c.outcome, "reason": c.reason}); n == 0 {
				t.Errorf("decision counter for %s/%s not incremented", c.outcome, c.reason)
			}
		})
	}
	t.Run("a malformed event is dead-lettered, not dropped", func(t *testing.T) {
		h.publishRaw(t, []byte(`{"id":`), "poison-1")
		testenv.WaitFor(t, 5*time.Second, "the dead letter", func() bool {
			ls, _ := deadletter.List(context.Background(), h.js, 0)
			for _, l := range ls {
				if l.Consumer == Consumer && l.Reason == envelope.ReasonMalformed && string(l.Data) == `{"id":` {
					return true
				}
			}
			return false
		})
	})
}

func TestReserve_SameEventTwiceAppliesStockOnce(t *testing.T) {
	h := startInventory(t)
	before := h.available(t, "PAGER-001")
	env, payload, _ := events.New(events.TypeOrderPlaced, newUUID(t), events.OrderPlaced{CustomerID: "c", Lines: []events.Line{{SKU: "PAGER-001", Quantity: 3}}}, time.Now())
	// Two publishes with different message ids get past the broker's dedup window, as a
	// producer that crashed and re-sent would.
	h.publishRaw(t, payload, "first")
	h.publishRaw(t, payload, "second")
	h.waitDecision(t, env.ID, "applied")
	h.waitDecision(t, env.ID, "duplicate")
	if diff := before - h.available(t, "PAGER-001"); diff != 3 {
		t.Errorf("stock reduced by %d, want 3", diff)
	}
	testenv.WaitFor(t, 5*time.Second, "one result event", func() bool { return len(h.results(t, env.Key)) == 1 })
}

func TestReserve_RedeliveryAfterCrashBetweenCommitAndAck(t *testing.T) {
	dsn := testenv.Postgres(t)
	h := newHarness(t, config(t, dsn, testenv.NATS(t), map[string]string{"CONSUMER_ACK_WAIT": "1s"}), dsn)
	before := h.available(t, "STICKER-001")
	env := h.publish(t, events.Line{SKU: "STICKER-001", Quantity: 5})

	// The "crashing" process: it takes the message, commits the reservation, and dies
	// before acknowledging.
	cons, err := h.js.Consumer(context.Background(), events.StreamOrders, Consumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var taken jetstream.Msg
	for m := range batch.Messages() {
		taken = m
	}
	if taken == nil {
		t.Fatal("no message fetched")
	}
	decoded, err := events.Decode(taken.Data())
	if err != nil {
		t.Fatal(err)
	}
	var out consumer.Result
	err = h.svc.handler(context.Background(), []*consumer.Message{{Event: decoded, Data: taken.Data()}}, func(_ int, r consumer.Result) { out = r })
	if err != nil || out.Outcome() != "applied" {
		t.Fatalf("first attempt: %s %s %v %v", out.Outcome(), out.Reason(), out.Err(), err)
	}

	// The restarted process gets the redelivery after AckWait and must not apply it again.
	h.run(t)
	d := h.waitDecision(t, env.ID, "duplicate")
	if d["delivery"] != float64(2) || d["settlement"] != "ack" {
		t.Errorf("decision %v, want delivery 2 acked", d)
	}
	if diff := before - h.available(t, "STICKER-001"); diff != 5 {
		t.Errorf("stock reduced by %d, want 5", diff)
	}
}

func TestReserve_PostgresOutageIsRetriedAndNothingIsLost(t *testing.T) {
	dsn := testenv.Postgres(t)
	proxy, viaProxy := testenv.ProxyDSN(t, dsn)
	h := newHarness(t, config(t, viaProxy, testenv.NATS(t), map[string]string{"CONSUMER_MAX_DELIVER": "30"}), dsn)
	h.run(t)
	before := h.available(t, "BOOK-002")

	proxy.Cut()
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = h.publish(t, events.Line{SKU: "BOOK-002", Quantity: 1}).ID
	}
	testenv.WaitFor(t, 10*time.Second, "retries while the database is down", func() bool {
		return len(h.tel.Decisions(map[string]string{"outcome": "retry", "reason": "db_unavailable", "settlement": "nak"})) >= n
	})
	time.Sleep(time.Second)
	proxy.Restore()

	for _, id := range ids {
		h.waitDecision(t, id, "applied")
	}
	if diff := before - h.available(t, "BOOK-002"); diff != n {
		t.Errorf("stock reduced by %d, want %d", diff, n)
	}
	if c, err := deadletter.Count(context.Background(), h.js); err != nil || c != 0 {
		t.Errorf("%d dead letters (%v), want none", c, err)
	}
	// Every event's result still reaches the stream once the relay can read its outbox.
	testenv.WaitFor(t, 10*time.Second, "all results published", func() bool {
		var unsent int
		err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM inventory.outbox WHERE sent_at IS NULL`).Scan(&unsent)
		return err == nil && unsent == 0
	})
}

func TestConfigFromEnv_Defaults(t *testing.T) {
	cfg, err := ConfigFromEnv(func(string) string { return "" })
	if err != nil || cfg.HTTPAddr != ":8081" || cfg.Consumer.MaxDeliver != 10 {
		t.Fatalf("%+v %v", cfg, err)
	}
	if _, err := ConfigFromEnv(func(k string) string { return map[string]string{"NATS_URL": "http://x"}[k] }); err == nil {
		t.Fatal("an http:// NATS_URL was accepted")
	}
}

// A bad request to the API is answered with a JSON 400 and recorded as a decision, like
// every other branch: no silent path at the HTTP boundary either.
func TestAPI_BadRequestIsAnsweredAndRecorded(t *testing.T) {
	h := startInventory(t)
	res, err := http.Get("http://" + h.svc.Addr() + "/v1/reservations?order_id=not-a-uuid")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ Error struct{ Code, Reason string } }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusBadRequest || body.Error.Reason != "bad_order_id" {
		t.Fatalf("answer %d %+v (%v), want 400 bad_order_id", res.StatusCode, body, err)
	}
	ds := h.tel.Decisions(map[string]string{"stage": "http", "outcome": "invalid", "reason": "bad_order_id"})
	if len(ds) != 1 || ds[0]["event_type"] != "GET /v1/reservations" {
		t.Errorf("decisions %v, want one for GET /v1/reservations", ds)
	}
}

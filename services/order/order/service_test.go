package order

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"loudly/internal/testenv"
	"loudly/pkg/consumer"
	"loudly/pkg/deadletter"
	"loudly/pkg/telemetry"
	"loudly/pkg/telemetry/telemetrytest"
	"loudly/services/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// running is an order service started the way main starts it, on a fresh database.
type running struct {
	svc  *Service
	tel  *telemetrytest.Capture
	db   *pgxpool.Pool
	base string
}

// testConfig is the tests' configuration; extra holds more variables, "NAME=value".
func testConfig(t *testing.T, dsn, natsURL string, extra ...string) Config {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL": dsn, "NATS_URL": natsURL, "HTTP_ADDR": "127.0.0.1:0",
		"CONSUMER_BACKOFF_BASE": "50ms", "CONSUMER_BACKOFF_MAX": "500ms",
		"RECONCILE_INTERVAL": "100ms", "SETTLEMENT_DEADLINE": "200ms", "SHUTDOWN_TIMEOUT": "5s",
		"DRILLS": "enabled",
	}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	cfg, err := ConfigFromEnv(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	tel := telemetrytest.New(t, "order")
	r := startWith(t, cfg, tel.Telemetry)
	r.tel = tel
	return r
}

// startWith runs the service with the given telemetry (tests of the export pipeline).
func startWith(t *testing.T, cfg Config, tel *telemetry.Telemetry) *running {
	t.Helper()
	svc, err := New(context.Background(), cfg, tel)
	if err != nil {
		t.Fatalf("start order service: %v", err)
	}
	testenv.RunService(t, "order service", 10*time.Second, svc.Run, svc.Close)
	db, err := pgxpool.New(context.Background(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return &running{svc: svc, db: db, base: "http://" + svc.Addr()}
}

func startOrder(t *testing.T) *running {
	return start(t, testConfig(t, testenv.Postgres(t), testenv.NATS(t)))
}

func (r *running) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := r.db.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r *running) do(t *testing.T, method, path, contentType, body string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

const goodOrder = `{"customer_id":"c-1","lines":[{"sku":"BOOK-001","quantity":2}]}`

func TestOrderAPI_RejectsBadInputWithJSONErrorAndLeavesNothingBehind(t *testing.T) {
	r := startOrder(t)
	huge := `{"customer_id":"` + strings.Repeat("x", MaxRequestBytes) + `","lines":[]}`
	cases := []struct {
		name, contentType, body string
		header                  map[string]string
		status                  int
		reason                  string
	}{
		{"no content type", "", goodOrder, nil, 415, "unsupported_media_type"},
		{"text content type", "text/plain", goodOrder, nil, 415, "unsupported_media_type"},
		{"empty body", "application/json", "", nil, 400, "empty_body"},
		{"malformed JSON", "application/json", `{"customer_id":`, nil, 400, "malformed_json"},
		{"not an object", "application/json", `[1,2]`, nil, 400, "bad_type"},
		{"trailing data", "application/json", goodOrder + `{}`, nil, 400, "malformed_json"},
		{"unknown field", "application/json", `{"customer_id":"c","lines":[{"sku":"BOOK-001","quantity":1}],"coupon":"FREE"}`, nil, 400, "unknown_field"},
		{"quantity as string", "application/json", `{"customer_id":"c","lines":[{"sku":"BOOK-001","quantity":"2"}]}`, nil, 400, "bad_type"},
		{"missing customer", "application/json", `{"lines":[{"sku":"BOOK-001","quantity":1}]}`, nil, 400, "missing_field"},
		{"no lines", "application/json", `{"customer_id":"c","lines":[]}`, nil, 400, "missing_field"},
		{"zero quantity", "application/json", `{"customer_id":"c","lines":[{"sku":"BOOK-001","quantity":0}]}`, nil, 400, "bad_field"},
		{"huge quantity", "application/json", `{"customer_id":"c","lines":[{"sku":"BOOK-001","quantity":1000000}]}`, nil, 400, "bad_field"},
		{"lower-case sku", "application/json", `{"customer_id":"c","lines":[{"sku":"book","quantity":1}]}`, nil, 400, "bad_field"},
		{"same sku twice", "application/json", `{"customer_id":"c","lines":[{"sku":"BOOK-001","quantity":1},{"sku":"BOOK-001","quantity":1}]}`, nil, 400, "bad_field"},
		{"a member name twice (I-JSON)", "application/json", `{"customer_id":"a","customer_id":"b","lines":[{"sku":"BOOK-001","quantity":1}]}`, nil, 400, "duplicate_member"},
		{"a nested member name twice", "application/json", `{"customer_id":"a","lines":[{"sku":"BOOK-001","quantity":1,"quantity":9}]}`, nil, 400, "duplicate_member"},
		{"invalid UTF-8 (I-JSON)", "application/json", "{\"customer_id\":\"a\xff\",\"lines\":[{\"sku\":\"BOOK-001\",\"quantity\":1}]}", nil, 400, "invalid_utf8"},
		{"an escaped lone surrogate", "application/json", `{"customer_id":"a\ud800","lines":[{"sku":"BOOK-001","quantity":1}]}`, nil, 400, "invalid_utf8"},
		{"oversize body", "application/json", huge, nil, 413, "body_too_large"},
		{"control character in idempotency key", "application/json", goodOrder, map[string]string{"Idempotency-Key": "a\tb"}, 400, "bad_idempotency_key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := r.do(t, "POST", "/v1/orders", c.contentType, c.body, c.header)
			if res.status != c.status {
				t.Fatalf("status %d, want %d; body %s", res.status, c.status, res.raw)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			e, _ := res.body["error"].(map[string]any)
			if e == nil || e["reason"] != c.reason || e["message"] == "" {
				t.Fatalf("error body %s, want reason %q and a message", res.raw, c.reason)
			}
			if len(r.tel.Decisions(map[string]string{"stage": "http", "outcome": "invalid", "reason": c.reason})) == 0 {
				t.Errorf("no invalid/%s decision recorded", c.reason)
			}
		})
	}
	if n := r.count(t, "orders.orders"); n != 0 {
		t.Errorf("%d orders stored after bad requests, want 0", n)
	}
	if n := r.count(t, "orders.outbox"); n != 0 {
		t.Errorf("%d outbox rows after bad requests, want 0", n)
	}
}

func TestOrderAPI_IdempotencyKey(t *testing.T) {
	r := startOrder(t)
	key := map[string]string{"Idempotency-Key": "order-42"}
	first := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, key)
	if first.status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	t.Run("a replay returns the first answer", func(t *testing.T) {
		again := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, key)
		if again.status != http.StatusAccepted || again.raw != first.raw {
			t.Fatalf("replay: %d %s, want 202 %s", again.status, again.raw, first.raw)
		}
		if again.header.Get("Idempotent-Replayed") != "true" {
			t.Error("replay is not marked Idempotent-Replayed")
		}
	})
	t.Run("a different request under the same key is a conflict", func(t *testing.T) {
		other := r.do(t, "POST", "/v1/orders", "application/json", strings.Replace(goodOrder, `"quantity":2`, `"quantity":3`, 1), key)
		if other.status != http.StatusConflict {
			t.Fatalf("conflict: %d %s", other.status, other.raw)
		}
	})
	if n := r.count(t, "orders.orders"); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
	if n := r.count(t, "orders.outbox"); n != 1 {
		t.Errorf("%d outbox rows, want 1", n)
	}
	if len(r.tel.Decisions(map[string]string{"outcome": "duplicate", "reason": "idempotency_replay"})) != 1 {
		t.Error("the replay was not recorded as a duplicate decision")
	}
}

func TestOrderAPI_GetOrder(t *testing.T) {
	r := startOrder(t)
	for _, c := range []struct {
		name, path string
		status     int
	}{
		{"bad id", "/v1/orders/not-a-uuid", 400},
		{"unknown id", "/v1/orders/0b6f3d4e-7a1c-4d2e-9f00-000000000000", 404},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := r.do(t, "GET", c.path, "", "", nil)
			if res.status != c.status || res.body["error"] == nil {
				t.Fatalf("%d %s, want %d with a JSON error", res.status, res.raw, c.status)
			}
		})
	}
	t.Run("an accepted order is pending with its trace id", func(t *testing.T) {
		created := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, nil)
		id, _ := created.body["id"].(string)
		got := r.do(t, "GET", "/v1/orders/"+id, "", "", nil)
		if got.status != 200 || got.body["status"] != StatusPending {
			t.Fatalf("%d %s", got.status, got.raw)
		}
		tp, _ := created.body["traceparent"].(string)
		if got.body["trace_id"] == "" || !strings.Contains(tp, got.body["trace_id"].(string)) {
			t.Errorf("trace_id %v not in traceparent %q", got.body["trace_id"], tp)
		}
	})
}

// Without an inventory service nothing settles: the reconciler must say so.
func TestOrderAPI_BatchGet(t *testing.T) {
	r := startOrder(t)
	var ids []string
	for range 3 {
		created := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, nil)
		id, _ := created.body["id"].(string)
		if created.status != http.StatusAccepted || id == "" {
			t.Fatalf("create: %d %s", created.status, created.raw)
		}
		ids = append(ids, id)
	}
	unknown := "0b6f3d4e-7a1c-4d2e-9f00-000000000000"
	ask := append(slices.Clone(ids), strings.ToUpper(ids[0]), unknown)
	body, _ := json.Marshal(BatchGetRequest{IDs: ask})
	res := r.do(t, "POST", "/v1/orders:batchGet", "application/json", string(body), nil)
	if res.status != http.StatusOK {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	var got BatchGetResponse
	if err := json.Unmarshal([]byte(res.raw), &got); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, o := range got.Orders {
		if o.Status != StatusPending || o.CreatedAt.IsZero() || o.TraceID == "" {
			t.Errorf("order %+v: want pending with its creation time and trace id", o)
		}
		seen = append(seen, o.ID)
	}
	slices.Sort(seen)
	slices.Sort(ids)
	if !slices.Equal(seen, ids) {
		t.Errorf("orders %v, want each of %v once (an id asked twice, in upper case, is one order)", seen, ids)
	}
	if !slices.Equal(got.NotFound, []string{unknown}) {
		t.Errorf("not_found %v, want [%s]", got.NotFound, unknown)
	}

	tooMany := make([]string, MaxBatchGet+1)
	for i := range tooMany {
		tooMany[i] = unknown
	}
	many, _ := json.Marshal(BatchGetRequest{IDs: tooMany})
	for _, c := range []struct {
		name, contentType, body string
		status                  int
		reason                  string
	}{
		{"no content type", "", string(body), 415, "unsupported_media_type"},
		{"empty body", "application/json", "", 400, "empty_body"},
		{"no ids", "application/json", `{"ids":[]}`, 400, "bad_id_count"},
		{"too many ids", "application/json", string(many), 400, "bad_id_count"},
		{"not a UUID", "application/json", `{"ids":["` + ids[0] + `","nope"]}`, 400, "bad_order_id"},
		{"ids not strings", "application/json", `{"ids":[1]}`, 400, "bad_type"},
		{"unknown field", "application/json", `{"ids":["` + ids[0] + `"],"all":true}`, 400, "unknown_field"},
		{"a member name twice", "application/json", `{"ids":["` + ids[0] + `"],"ids":[]}`, 400, "duplicate_member"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := r.do(t, "POST", "/v1/orders:batchGet", c.contentType, c.body, nil)
			e, _ := res.body["error"].(map[string]any)
			if res.status != c.status || e == nil || e["reason"] != c.reason {
				t.Fatalf("%d %s, want %d with reason %q", res.status, res.raw, c.status, c.reason)
			}
		})
	}
}

func TestReconciler_ReportsOrdersPendingPastTheDeadline(t *testing.T) {
	r := startOrder(t)
	for i := range 3 {
		res := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, map[string]string{"Idempotency-Key": fmt.Sprint(i)})
		if res.status != 202 {
			t.Fatal(res.raw)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "the reconciler to report 3 unsettled orders", func() bool {
		return r.svc.reconciler.count.Load() == 3
	})
	if time.Duration(r.svc.reconciler.oldestAge.Load()) < 200*time.Millisecond {
		t.Errorf("oldest age %s, want at least the deadline", time.Duration(r.svc.reconciler.oldestAge.Load()))
	}
	if len(r.tel.Decisions(map[string]string{"stage": "reconcile", "reason": "pending_past_deadline"})) == 0 {
		t.Error("no reconcile decision recorded")
	}
}

func TestConfigFromEnv_ReportsEveryBadVariable(t *testing.T) {
	_, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"DATABASE_URL": "mysql://x", "HTTP_ADDR": "nope", "CONSUMER_MAX_DELIVER": "0", "RECONCILE_INTERVAL": "-1s",
			"DRILLS": "on"}[k]
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"DATABASE_URL", "HTTP_ADDR", "CONSUMER_MAX_DELIVER", "RECONCILE_INTERVAL", "DRILLS"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if cfg, err := ConfigFromEnv(func(string) string { return "" }); err != nil || cfg.Drills.Enabled {
		t.Errorf("defaults: %v, drills %v (want off)", err, cfg.Drills.Enabled)
	}
}

// Only the fault bucket switches faults on: no header or query string does.
func TestFaults_CannotBeSwitchedOnByARequest(t *testing.T) {
	r := startOrder(t)
	for _, path := range []string{"/v1/orders", "/v1/orders?fault=schema-drift&intensity=1", "/v1/orders?drill=outbox-stall"} {
		res := r.do(t, "POST", path, "application/json", goodOrder, map[string]string{
			"Loudly-Fault": "schema-drift", "X-Loudly-Fault": "outbox-stall", "X-Drill": "poison-flood",
		})
		if res.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", path, res.status, res.raw)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "every event published", func() bool {
		var unsent int
		return r.db.QueryRow(context.Background(), `SELECT count(*) FROM orders.outbox WHERE sent_at IS NULL`).Scan(&unsent) == nil && unsent == 0
	})
	for _, name := range []string{"schema-drift", "outbox-stall", "poison-flood"} {
		if _, ok := r.svc.drills.Get(name); ok {
			t.Errorf("fault %s is active after requests asked for it", name)
		}
	}
	var drifted int
	if err := r.db.QueryRow(context.Background(), `SELECT count(*) FROM orders.outbox WHERE convert_from(payload, 'UTF8')::jsonb->>'version' <> '1'`).Scan(&drifted); err != nil || drifted != 0 {
		t.Errorf("%d events with another version (%v)", drifted, err)
	}
}

// The settlement consumer keeps SettlementMaxAckPending messages in flight unless
// CONSUMER_MAX_ACK_PENDING is set, which then holds for it as for every other consumer.
func TestSettlementConsumer_MaxAckPending(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		env                    []string
		settlement, deadLetter int
	}{
		{"unset", nil, SettlementMaxAckPending, consumer.DefaultMaxAckPending},
		{"set", []string{"CONSUMER_MAX_ACK_PENDING=300"}, 300, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			natsURL := testenv.NATS(t)
			start(t, testConfig(t, testenv.Postgres(t), natsURL, tc.env...))
			js := testenv.JetStream(t, natsURL)
			for stream, want := range map[[2]string]int{
				{events.StreamInventory, SettlementConsumer}: tc.settlement,
				{deadletter.Stream, DeadLetterConsumer}:      tc.deadLetter,
			} {
				c, err := js.Consumer(context.Background(), stream[0], stream[1])
				if err != nil {
					t.Fatal(err)
				}
				if got := c.CachedInfo().Config.MaxAckPending; got != want {
					t.Errorf("consumer %s: MaxAckPending = %d, want %d", stream[1], got, want)
				}
			}
		})
	}
}

package load

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"loudly/pkg/deadletter"
	"loudly/pkg/envelope"
	"loudly/services/events"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x) * time.Millisecond
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"no values", nil, 50, 0},
		{"one value is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"median of an odd count", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median of an even count is the lower middle", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p100 is the maximum", ms(1, 5, 9), 100, 9 * time.Millisecond},
		{"p99 of few values is the maximum", ms(1, 2, 3, 4, 5), 99, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummary_String(t *testing.T) {
	s := Summary{Verified: true, Sent: 2001, Accepted: 2000, HTTPErrors: 1, Behind: 3, Retries: 2,
		Confirmed: 1900, Rejected: 95, Failed: 4, NotFinal: 1, PoisonSent: 40, DeadLettered: 39, Lost: 2,
		P50: 12345 * time.Microsecond, P99: 250 * time.Millisecond, OrdersPerSec: 199.96, SettledPerSec: 150.04, Unexpected: 1}
	want := "accepted=2000 confirmed=1900 rejected=95 failed=4 dead_lettered=39 lost=2 p50_ms=12.3 p99_ms=250.0 orders_per_s=200.0" +
		" settled_per_s=150.0 sent=2001 http_errors=1 behind=3 retries=2 poison=40 poison_errors=0 unexpected=1 verified=false"
	if got := s.String(); got != want {
		t.Errorf("summary line:\n got %s\nwant %s", got, want)
	}
	// verified= means what it says: checked, and nothing lost.
	for _, c := range []struct {
		verified bool
		lost     int
		want     string
	}{{true, 0, " verified=true"}, {true, 114, " verified=false"}, {false, 0, " verified=false"}} {
		s.Verified, s.Lost = c.verified, c.lost
		if got := s.String(); !strings.HasSuffix(got, c.want) {
			t.Errorf("checked %t, lost %d: %s, want it to end with%s", c.verified, c.lost, got, c.want)
		}
	}
}

// testRun is a run of five orders and two poison events, as the phases would report it.
func testRun() (sendReport, *verification) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := created.Add(d); return &t }
	sent := sendReport{
		orders: []placed{
			{sent: true, kind: kindPlain, id: "o1", attempts: 1},
			{sent: true, kind: kindUnknown, id: "o2", attempts: 2},
			{sent: true, kind: kindPlain, id: "o3", attempts: 1},
			{sent: true, kind: kindPlain, attempts: 4, err: errors.New("POST /v1/orders: 503 Service Unavailable")},
			{sent: false}, // behind
			{sent: true, kind: kindSoldOut, id: "o5", attempts: 1},
		},
		behind:  1,
		elapsed: 2 * time.Second,
		poisons: []poison{{msgID: "poison-a", kind: envelope.ReasonMalformed}, {msgID: "poison-b", kind: envelope.ReasonUnknownVersion}},
	}
	v := &verification{
		orders: map[string]orderView{
			"o1": {ID: "o1", Status: "confirmed", CreatedAt: created, SettledAt: at(10 * time.Millisecond)},
			"o2": {ID: "o2", Status: "rejected", Reason: "unknown_sku", CreatedAt: created, SettledAt: at(30 * time.Millisecond)},
			"o3": {ID: "o3", Status: "pending", CreatedAt: created},
			// A failed order has no settled_at; its last update is when it failed.
			"o5": {ID: "o5", Status: "failed", Reason: "dead_lettered: x", CreatedAt: created, UpdatedAt: created.Add(20 * time.Millisecond)},
		},
		orderErrs: map[string]error{},
		letters:   map[string]deadletter.Letter{"poison-a": {Reason: envelope.ReasonMalformed}},
		waited:    time.Second,
	}
	return sent, v
}

func TestReport_Summary(t *testing.T) {
	sent, v := testRun()

	t.Run("verified", func(t *testing.T) {
		s := report{sent: sent, verified: v}.summary()
		want := Summary{Verified: true, Scheduled: 6, Sent: 5, Behind: 1, Accepted: 4, HTTPErrors: 1, Retries: 4,
			Confirmed: 1, Rejected: 1, Failed: 1, NotFinal: 1, Unexpected: 1, // sold-out order failed instead of rejected
			PoisonSent: 2, DeadLettered: 1, PoisonMissing: 1, Lost: 2,
			P50: 20 * time.Millisecond, P99: 30 * time.Millisecond, SendDuration: 2 * time.Second, OrdersPerSec: 2,
			SettledPerSec: 100, VerifyDuration: time.Second} // 3 final orders between the first acceptance and the last final status, 30ms
		if !reflect.DeepEqual(s, want) {
			t.Errorf("summary:\n got %+v\nwant %+v", s, want)
		}
	})
	t.Run("warm-up latencies are reported apart", func(t *testing.T) {
		// At 2 orders/s, a warm-up of 1s covers the first two orders of the schedule: o1
		// (10ms) and o2 (30ms). What is left in P50 and P99 is o5 (20ms).
		s := report{cfg: Config{Rate: 2, Warmup: time.Second}, sent: sent, verified: v}.summary()
		if s.WarmupOrders != 2 || s.WarmupP99 != 30*time.Millisecond || s.P50 != 20*time.Millisecond || s.P99 != 20*time.Millisecond {
			t.Errorf("warm-up %d orders p99 %v, after it p50 %v p99 %v; want 2 orders p99 30ms, then p50 and p99 20ms",
				s.WarmupOrders, s.WarmupP99, s.P50, s.P99)
		}
		if s.SettledPerSec != 100 || s.Confirmed+s.Rejected+s.Failed != 3 {
			t.Errorf("the warm-up's orders must still count: settled/s %v, final %d", s.SettledPerSec, s.Confirmed+s.Rejected+s.Failed)
		}
		if !strings.HasSuffix(s.String(), " warmup_orders=2 warmup_p99_ms=30.0") {
			t.Errorf("summary line %q does not end with the warm-up's figures", s)
		}
	})
	t.Run("unverified counts everything unchecked as lost", func(t *testing.T) {
		s := report{sent: sent}.summary()
		if s.Verified || s.Confirmed+s.Rejected+s.Failed != 0 || s.DeadLettered != 0 || s.NotFinal != 4 || s.Lost != 6 || s.P50 != 0 {
			t.Errorf("summary = %+v", s)
		}
		if !strings.HasSuffix(s.String(), " verified=false") {
			t.Errorf("summary line %q does not say it was not verified", s)
		}
	})
}

func TestReport_Failure(t *testing.T) {
	sent, v := testRun()
	r := report{cfg: Config{URL: "http://orders"}, sent: sent, verified: v}
	err := r.failure(t.Context(), r.summary())
	if !errors.Is(err, ErrLost) {
		t.Fatalf("failure = %v, want ErrLost", err)
	}
	for _, want := range []string{"lost=2", "1 of 4 accepted orders are not final (e.g. o3 (pending))",
		"1 of 2 poison events are not in the dead letters (e.g. poison-b (unknown_version))"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("failure %q does not contain %q", err, want)
		}
	}

	r.verified = nil
	if err := r.failure(t.Context(), r.summary()); err != nil {
		t.Errorf("unverified run failed: %v", err)
	}
	r.sent.orders = []placed{{sent: true, err: errors.New("connection refused"), attempts: 4}}
	if err := r.failure(t.Context(), r.summary()); err == nil || !strings.Contains(err.Error(), "none of 1 orders was accepted") {
		t.Errorf("failure with nothing accepted = %v", err)
	}
}

func TestNewOrder(t *testing.T) {
	const seed, n = 42, 5000
	kinds := map[kind]int{}
	for i := 1; i <= n; i++ {
		k, o := newOrder(seed, i)
		kinds[k]++
		if err := (events.OrderPlaced{CustomerID: o.CustomerID, Lines: o.Lines}).Validate(); err != nil {
			t.Fatalf("order %d is not a valid order: %v (%+v)", i, err, o)
		}
		if o.CustomerID != fmt.Sprintf("load-%d", i) {
			t.Fatalf("order %d customer_id = %q", i, o.CustomerID)
		}
		special := map[kind]string{kindLimited: skuLimited, kindSoldOut: skuSoldOut, kindUnknown: fmt.Sprintf("NOPE-%d", i)}[k]
		has := false
		for _, l := range o.Lines {
			has = has || l.SKU == special
		}
		if k != kindPlain && !has {
			t.Fatalf("order %d of kind %s has no %s line: %+v", i, k, special, o.Lines)
		}
		if k == kindPlain && (len(o.Lines) < 1 || len(o.Lines) > 3) {
			t.Fatalf("plain order %d has %d lines, want 1-3", i, len(o.Lines))
		}
		if _, again := newOrder(seed, i); fmt.Sprint(again) != fmt.Sprint(o) {
			t.Fatalf("order %d differs between two calls with the same seed", i)
		}
	}
	// The mix the package documents: ~94% plain, ~3% limited, ~2% unknown, ~1% sold out.
	for k, want := range map[kind]float64{kindPlain: 0.94, kindLimited: 0.03, kindUnknown: 0.02, kindSoldOut: 0.01} {
		if got := float64(kinds[k]) / n; got < want*0.7 || got > want*1.3 {
			t.Errorf("%s orders: %.3f of the mix, want about %.2f", k, got, want)
		}
	}
}

func TestPoisonPayload(t *testing.T) {
	for _, kind := range poisonKinds {
		t.Run(kind, func(t *testing.T) {
			_, err := events.Decode(poisonPayload(kind, time.Now()))
			var inv *envelope.Invalid
			if !errors.As(err, &inv) || inv.Reason != kind {
				t.Errorf("Decode = %v, want invalid with reason %s", err, kind)
			}
		})
	}
}

// Windows split a run by acceptance time for latency and by settlement time for
// throughput, so a pipeline falling behind shows as a rising p99 and settled/s that stays
// below the rate.
func TestWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var views []orderView
	add := func(created, latency time.Duration) {
		settled := t0.Add(created + latency)
		views = append(views, orderView{Status: "confirmed", CreatedAt: t0.Add(created), SettledAt: &settled})
	}
	// Window 0: 10 orders, 100ms each. Window 1: 10 orders, the last one 9s late, so it
	// settles in window 2 with 20 more quick ones.
	for i := range 10 {
		add(time.Duration(i)*time.Second, 100*time.Millisecond)
	}
	for i := range 9 {
		add(10*time.Second+time.Duration(i)*time.Second, 100*time.Millisecond)
	}
	add(19*time.Second, 9*time.Second)
	for i := range 20 {
		add(20*time.Second+time.Duration(i)*250*time.Millisecond, 100*time.Millisecond)
	}
	got := windows(views, 10*time.Second)
	want := []Window{
		{Start: 0, Length: 10 * time.Second, Accepted: 10, P99: 100 * time.Millisecond, SettledPerSec: 1},
		{Start: 10 * time.Second, Length: 10 * time.Second, Accepted: 10, P99: 9 * time.Second, SettledPerSec: 0.9},
		// The last window ends with the last settlement, 28s after the first acceptance.
		{Start: 20 * time.Second, Length: 8 * time.Second, Accepted: 20, P99: 100 * time.Millisecond, SettledPerSec: 21.0 / 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("windows:\n got %+v\nwant %+v", got, want)
	}
	if windows(views, 0) != nil || windows(nil, time.Second) != nil {
		t.Error("no window length or no orders: want no windows")
	}
}

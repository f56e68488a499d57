package gameday

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"loudly/services/drill"
)

func TestGameday_Schedule(t *testing.T) {
	each, recovery := 3*time.Minute, 2*time.Minute
	names := func(s Schedule) string { return strings.Join(s.Drills, " ") }

	t.Run("the same seed gives the same game", func(t *testing.T) {
		for _, seed := range []uint64{0, 1, 42, 1 << 63} {
			a := NewSchedule(seed, 90*time.Minute, each, recovery, drill.Catalog)
			b := NewSchedule(seed, 90*time.Minute, each, recovery, drill.Catalog)
			if names(a) != names(b) {
				t.Errorf("seed %d: %s, then %s", seed, names(a), names(b))
			}
		}
	})
	t.Run("different seeds give different games", func(t *testing.T) {
		seen := map[string]uint64{}
		for seed := range uint64(20) {
			s := names(NewSchedule(seed, 40*time.Minute, each, recovery, drill.Catalog))
			if other, dup := seen[s]; dup {
				t.Errorf("seeds %d and %d both give %s", other, seed, s)
			}
			seen[s] = seed
		}
	})
	t.Run("fits the duration, every drill once per round, never twice in a row", func(t *testing.T) {
		for _, tc := range []struct {
			duration time.Duration
			want     int
		}{
			{5 * time.Minute, 1},
			{9*time.Minute + 59*time.Second, 1},
			{40 * time.Minute, 8},
			{90 * time.Minute, 18},
		} {
			for seed := range uint64(50) {
				s := NewSchedule(seed, tc.duration, each, recovery, drill.Catalog)
				if len(s.Drills) != tc.want || time.Duration(len(s.Drills))*(each+recovery) > tc.duration {
					t.Fatalf("%s, seed %d: %d drills (%s), want %d", tc.duration, seed, len(s.Drills), names(s), tc.want)
				}
				for i := 0; i < len(s.Drills); i += len(drill.Catalog) {
					round := slices.Clone(s.Drills[i:min(i+len(drill.Catalog), len(s.Drills))])
					slices.Sort(round)
					if len(slices.Compact(round)) != len(round) {
						t.Fatalf("%s, seed %d: a drill repeats within a round: %s", tc.duration, seed, names(s))
					}
				}
				for i := 1; i < len(s.Drills); i++ {
					if s.Drills[i] == s.Drills[i-1] {
						t.Fatalf("%s, seed %d: %s twice in a row: %s", tc.duration, seed, s.Drills[i], names(s))
					}
				}
			}
		}
		full := NewSchedule(7, 40*time.Minute, each, recovery, drill.Catalog).Drills
		slices.Sort(full)
		var catalog []string
		for _, s := range drill.Catalog {
			catalog = append(catalog, s.Name)
		}
		slices.Sort(catalog)
		if !slices.Equal(full, catalog) {
			t.Errorf("one round is %v, want the catalog %v", full, catalog)
		}
	})
}

// fakeClock is a clock whose sleep returns at once, having moved time on; it can cancel
// a context when it passes a given time, as Ctrl-C would.
type fakeClock struct {
	mu       sync.Mutex
	t        time.Time
	cancelAt time.Time
	cancel   context.CancelFunc
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	if c.cancel != nil && !c.t.Before(c.cancelAt) {
		c.cancel()
	}
	c.mu.Unlock()
	return ctx.Err()
}

// fakeFaults records what a game day switches.
type fakeFaults struct {
	clock  *fakeClock
	mu     sync.Mutex
	active string // the fault on now, "" for none
	since  time.Time
	log    []string
}

func (f *fakeFaults) Start(_ context.Context, name string, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active, f.since = name, f.clock.now()
	f.log = append(f.log, fmt.Sprintf("start %s for %s", name, d))
	return nil
}

func (f *fakeFaults) Stop(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.active == name {
		f.active = ""
	}
	f.log = append(f.log, "stop "+name)
	return nil
}

// fakeWorld is a game day's world: the faults, and a Prometheus (a real HTTP server
// speaking the API) whose alerts and unsettled count are functions of the fake time and
// of what the game day switched on.
type fakeWorld struct {
	clock  *fakeClock
	faults *fakeFaults
	t0     time.Time
	// alerts returns the active alerts at time t.
	alerts    func(t time.Time) []promv1.Alert
	unsettled func(t time.Time) (float64, bool)
	rules     map[string]time.Duration
}

func newFakeWorld(t *testing.T) (*fakeWorld, *Game) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	w := &fakeWorld{clock: clock, faults: &fakeFaults{clock: clock}, t0: t0,
		alerts:    func(time.Time) []promv1.Alert { return nil },
		unsettled: func(time.Time) (float64, bool) { return 0, true },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		now := clock.now()
		var data any
		switch r.URL.Path {
		case "/api/v1/alerts":
			alerts := w.alerts(now)
			if alerts == nil {
				alerts = []promv1.Alert{}
			}
			data = map[string]any{"alerts": alerts}
		case "/api/v1/query":
			if q := r.FormValue("query"); q != unsettledQuery { // the client POSTs its queries
				http.Error(rw, `{"status":"error","error":"unexpected query"}`, http.StatusBadRequest)
				return
			}
			result := []any{}
			if v, ok := w.unsettled(now); ok {
				result = append(result, map[string]any{"metric": map[string]string{}, "value": []any{float64(now.Unix()), fmt.Sprint(v)}})
			}
			data = map[string]any{"resultType": "vector", "result": result}
		case "/api/v1/rules":
			var rules []map[string]any
			for name, hold := range w.rules {
				rules = append(rules, map[string]any{"name": name, "type": "alerting", "duration": hold.Seconds()})
			}
			data = map[string]any{"groups": []any{map[string]any{"name": "loudly", "rules": rules}}}
		default:
			http.NotFound(rw, r)
			return
		}
		_ = json.NewEncoder(rw).Encode(map[string]any{"status": "success", "data": data})
	}))
	t.Cleanup(srv.Close)
	client, err := promapi.NewClient(promapi.Config{Address: srv.URL, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	g := &Game{
		Faults:     w.faults,
		Prometheus: promv1.NewAPI(client),
		Now:        clock.now,
		Sleep:      clock.sleep,
		Progress:   &bytes.Buffer{},
	}
	return w, g
}

// alert is an alert as Prometheus's API shows it.
func alert(name, state string, labels ...string) promv1.Alert {
	l := model.LabelSet{"alertname": model.LabelValue(name), "severity": "warning"}
	for i := 0; i+1 < len(labels); i += 2 {
		l[model.LabelName(labels[i])] = model.LabelValue(labels[i+1])
	}
	return promv1.Alert{Labels: l, State: promv1.AlertState(state)}
}

// between reports whether t is in [from, to) after t0.
func between(t, t0 time.Time, from, to time.Duration) bool {
	return !t.Before(t0.Add(from)) && t.Before(t0.Add(to))
}

func TestGameday_Scorecard(t *testing.T) {
	const each, recovery = 3 * time.Minute, 2 * time.Minute
	slot := each + recovery
	plan := Schedule{Seed: 1, Each: each, Recover: recovery, Drills: []string{drill.StockOut, drill.SilentSkip, drill.OutboxStall}}

	t.Run("detection, expected loss, carried-over tails and a miss", func(t *testing.T) {
		w, g := newFakeWorld(t)
		w.alerts = func(now time.Time) []promv1.Alert {
			var out []promv1.Alert
			// stock-out: pending from 40s, firing from 70s until 30s after its fault stopped.
			if between(now, w.t0, 40*time.Second, 70*time.Second) {
				out = append(out, alert("LoudlyRejectionRateHigh", "pending"))
			}
			if between(now, w.t0, 70*time.Second, each+30*time.Second) {
				out = append(out, alert("LoudlyRejectionRateHigh", "firing"))
			}
			// silent-skip: unsettled orders fire 3m10s in (after its fault stopped) and never
			// resolve; the skipped orders stay pending.
			if between(now, w.t0, slot+190*time.Second, 100*time.Hour) {
				out = append(out, alert("LoudlyUnsettledOrders", "firing", "job", "order"))
			}
			return out
		}
		w.unsettled = func(now time.Time) (float64, bool) {
			if now.Before(w.t0.Add(slot + 70*time.Second)) {
				return 0, true
			}
			return 37, true
		}
		card := g.Run(context.Background(), plan)

		if card.Passed || card.Interrupted || card.Error != "" || len(card.Drills) != 3 {
			t.Fatalf("scorecard %+v: want 3 drills, not passed (outbox-stall undetected)", card)
		}
		stock, skip, stall := card.Drills[0], card.Drills[1], card.Drills[2]
		if stock.DetectedBy != "LoudlyRejectionRateHigh" || *stock.TimeToDetect != 70 || !stock.Started.Equal(w.t0) || !stock.Passed() {
			t.Errorf("stock-out: detected by %q after %v, started %s", stock.DetectedBy, stock.TimeToDetect, stock.Started)
		}
		if skip.DetectedBy != "LoudlyUnsettledOrders" || *skip.TimeToDetect != 190 || !skip.Passed() {
			t.Errorf("silent-skip: detected by %q after %v; an alert firing in the recovery pause detects the drill", skip.DetectedBy, skip.TimeToDetect)
		}
		if !skip.LossExpected || *skip.UnsettledAfter != 37 || !strings.Contains(skip.Unsettled, "expected") || strings.Contains(skip.Unsettled, "STUCK") {
			t.Errorf("silent-skip loss: %+v, verdict %q: want 37, expected and reported by the reconciler", skip.UnsettledAfter, skip.Unsettled)
		}
		if stall.Detected() || stall.Passed() || !strings.Contains(stall.Unsettled, "carried over") {
			t.Errorf("outbox-stall: detected by %q, unsettled %q: want not detected and the 37 carried over", stall.DetectedBy, stall.Unsettled)
		}
		if want := []string{
			"start stock-out for 3m0s", "stop stock-out",
			"start silent-skip for 3m0s", "stop silent-skip",
			"start outbox-stall for 3m0s", "stop outbox-stall",
		}; !slices.Equal(w.faults.log, want) {
			t.Errorf("faults switched: %q, want %q", w.faults.log, want)
		}
		if end := w.clock.now(); !end.Equal(w.t0.Add(3 * slot)) {
			t.Errorf("the game took %s, want %s", end.Sub(w.t0), 3*slot)
		}

		var out bytes.Buffer
		card.Print(&out)
		for _, want := range []string{
			"DRILL", "stock-out", "10:00:00", "LoudlyRejectionRateHigh after 1m10s",
			"LoudlyUnsettledOrders after 3m10s", "OK", "not detected", "37: expected", "FAIL",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, out.String())
			}
		}
		b, _ := json.Marshal(card)
		var back struct {
			Passed bool
			Drills []struct {
				Drill        string   `json:"drill"`
				DetectedBy   string   `json:"detected_by"`
				TimeToDetect *float64 `json:"time_to_detect_seconds"`
				Unsettled    *float64 `json:"unsettled_after_recovery"`
				LossExpected bool     `json:"loss_expected"`
			}
		}
		if err := json.Unmarshal(b, &back); err != nil || back.Passed || len(back.Drills) != 3 ||
			back.Drills[0].DetectedBy != "LoudlyRejectionRateHigh" || *back.Drills[0].TimeToDetect != 70 ||
			back.Drills[2].TimeToDetect != nil || !back.Drills[1].LossExpected || *back.Drills[1].Unsettled != 37 {
			t.Errorf("JSON: %v\n%s", err, b)
		}
	})

	t.Run("a quiet alert firing fails silent-skip even when it is detected", func(t *testing.T) {
		w, g := newFakeWorld(t)
		w.alerts = func(now time.Time) []promv1.Alert {
			if between(now, w.t0, 60*time.Second, 100*time.Hour) {
				return []promv1.Alert{alert("LoudlyThroughputDivergence", "firing"), alert("LoudlyInvalidRateHigh", "firing", "job", "inventory")}
			}
			return nil
		}
		card := g.Run(context.Background(), Schedule{Seed: 1, Each: each, Recover: recovery, Drills: []string{drill.SilentSkip}})
		d := card.Drills[0]
		if card.Passed || !d.Detected() || d.QuietViolated["LoudlyInvalidRateHigh"].IsZero() {
			t.Fatalf("passed %v, drill %+v: want detected, the quiet alert violated, and a failed game", card.Passed, d)
		}
		var out bytes.Buffer
		card.Print(&out)
		if !strings.Contains(out.String(), "VIOLATED: LoudlyInvalidRateHigh") {
			t.Errorf("table:\n%s", out.String())
		}
	})

	t.Run("an alert already firing at the start counts only once it resolved and fired again", func(t *testing.T) {
		w, g := newFakeWorld(t)
		w.alerts = func(now time.Time) []promv1.Alert {
			// The tail of an earlier incident until 20s in, then this drill's own from 60s.
			if now.Before(w.t0.Add(20*time.Second)) || !now.Before(w.t0.Add(60*time.Second)) {
				return []promv1.Alert{alert("LoudlyThroughputDivergence", "firing")}
			}
			return nil
		}
		card := g.Run(context.Background(), Schedule{Seed: 1, Each: each, Recover: recovery, Drills: []string{drill.DBLatency}})
		d := card.Drills[0]
		if !card.Passed || d.DetectedBy != "LoudlyThroughputDivergence" || *d.TimeToDetect != 60 || !slices.Equal(d.CarriedOver, []string{"LoudlyThroughputDivergence"}) {
			t.Errorf("drill %+v (after %v): want detected at 60s, with the tail noted as carried over", d, *d.TimeToDetect)
		}
	})

	t.Run("a tail that never resolves is no detection", func(t *testing.T) {
		w, g := newFakeWorld(t)
		w.alerts = func(time.Time) []promv1.Alert {
			return []promv1.Alert{alert("LoudlyOutboxBacklogGrowing", "firing", "table", "orders.outbox")}
		}
		card := g.Run(context.Background(), Schedule{Seed: 1, Each: each, Recover: recovery, Drills: []string{drill.OutboxStall}})
		if card.Passed || card.Drills[0].Detected() {
			t.Errorf("scorecard %+v", card)
		}
	})

	t.Run("every drill detected, nothing quiet fired: passed", func(t *testing.T) {
		w, g := newFakeWorld(t)
		w.alerts = func(now time.Time) []promv1.Alert {
			w.faults.mu.Lock()
			active, since := w.faults.active, w.faults.since
			w.faults.mu.Unlock()
			if spec, ok := drill.Lookup(active); ok && now.Sub(since) >= 30*time.Second {
				return []promv1.Alert{alert(spec.Alerts[len(spec.Alerts)-1], "firing")}
			}
			return nil
		}
		w.unsettled = func(time.Time) (float64, bool) { return 0, false } // no series yet
		all := NewSchedule(3, 8*slot, each, recovery, drill.Catalog)
		card := g.Run(context.Background(), all)
		if !card.Passed || len(card.Drills) != len(drill.Catalog) {
			t.Fatalf("scorecard %+v", card)
		}
		for _, d := range card.Drills {
			if *d.TimeToDetect != 30 || !strings.Contains(d.Unsettled, "unknown") {
				t.Errorf("%s: after %v, unsettled %q", d.Drill, *d.TimeToDetect, d.Unsettled)
			}
		}
		var out bytes.Buffer
		card.Print(&out)
		if !strings.Contains(out.String(), "8 of 8 drills detected; PASS") {
			t.Errorf("table:\n%s", out.String())
		}
	})

	t.Run("Ctrl-C stops the current fault and keeps the drills so far", func(t *testing.T) {
		w, g := newFakeWorld(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		w.clock.cancelAt, w.clock.cancel = w.t0.Add(slot+time.Minute), cancel
		w.alerts = func(now time.Time) []promv1.Alert {
			if between(now, w.t0, 10*time.Second, each) {
				return []promv1.Alert{alert("LoudlyRejectionRateHigh", "firing")}
			}
			return nil
		}
		card := g.Run(ctx, plan)
		if !card.Interrupted || card.Passed || len(card.Drills) != 2 || !card.Drills[1].Interrupted || !card.Drills[0].Passed() {
			t.Fatalf("scorecard %+v: want interrupted in the second drill, the first scored", card)
		}
		if w.faults.active != "" || w.faults.log[len(w.faults.log)-1] != "stop silent-skip" {
			t.Errorf("faults: %q, still active %q", w.faults.log, w.faults.active)
		}
		var out bytes.Buffer
		card.Print(&out)
		if !strings.Contains(out.String(), "INTERRUPTED") || !strings.Contains(out.String(), "not measured (interrupted)") {
			t.Errorf("table:\n%s", out.String())
		}
	})

	t.Run("warns about drills whose alerts cannot fire in time", func(t *testing.T) {
		w, g := newFakeWorld(t)
		w.rules = map[string]time.Duration{"LoudlyRejectionRateHigh": 5 * time.Minute, "LoudlyOutboxBacklogGrowing": 2 * time.Minute}
		card := g.Run(context.Background(), Schedule{Seed: 1, Each: each, Recover: recovery, Drills: []string{drill.StockOut, drill.OutboxStall, drill.DBOutage}})
		got := strings.Join(card.Warnings, "\n")
		for _, want := range []string{"stock-out: its quickest alert holds 5m0s", "db-outage: Prometheus has no rule LoudlyConsumerStalled, LoudlyThroughputDivergence"} {
			if !strings.Contains(got, want) {
				t.Errorf("warnings lack %q:\n%s", want, got)
			}
		}
		if strings.Contains(got, "outbox-stall") {
			t.Errorf("outbox-stall warned about:\n%s", got)
		}
	})
}

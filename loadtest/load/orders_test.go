package load

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The order service cannot be made to answer 503 on demand, so the client's retry rule is
// tested against a scripted server; the end-to-end test covers the real one.
func TestPlacer_RetriesWithTheSameKeyAndBody(t *testing.T) {
	tests := []struct {
		name         string
		statuses     []int // answers, in order; the last repeats
		wantAccepted bool
		wantAttempts int
	}{
		{"accepted at once", []int{202}, true, 1},
		{"5xx is retried until accepted", []int{503, 500, 202}, true, 3},
		{"429 is retried", []int{429, 202}, true, 2},
		{"gives up after three retries", []int{503}, false, 4},
		{"4xx is not retried", []int{400}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var keys, bodies []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				keys = append(keys, r.Header.Get("Idempotency-Key"))
				bodies = append(bodies, string(b))
				status := tt.statuses[min(len(keys), len(tt.statuses))-1]
				mu.Unlock()
				w.WriteHeader(status)
				if status == http.StatusAccepted {
					_, _ = io.WriteString(w, `{"id":"0b6a1f3e-58b3-4f0e-9a7a-3c1f0f1d2e3a","status":"pending"}`)
				}
			}))
			defer srv.Close()
			p := &placer{client: srv.Client(), baseURL: srv.URL, runID: "r1", seed: 1}
			res := p.place(t.Context(), 7)
			if got := res.id != ""; got != tt.wantAccepted || res.attempts != tt.wantAttempts {
				t.Errorf("accepted = %v after %d attempts (err %v), want %v after %d", got, res.attempts, res.err, tt.wantAccepted, tt.wantAttempts)
			}
			for i := range keys {
				if keys[i] != "load-r1-7" || bodies[i] != bodies[0] {
					t.Errorf("request %d: key %q body %q; want key load-r1-7 and the first body %q", i+1, keys[i], bodies[i], bodies[0])
				}
			}
			if !strings.Contains(bodies[0], `"customer_id":"load-7"`) {
				t.Errorf("body %s does not carry customer load-7", bodies[0])
			}
		})
	}
}

// A service slower than the schedule does not slow the schedule down: the run still ends
// on time, and the orders no worker could take are counted as behind.
func TestSend_HoldsTheRateWhenTheServiceIsSlow(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"0b6a1f3e-58b3-4f0e-9a7a-3c1f0f1d2e3a","status":"pending"}`)
	}))
	defer srv.Close()
	cfg := Config{URL: srv.URL, Rate: 100, Duration: time.Second, Concurrency: 2}
	p := &placer{client: srv.Client(), baseURL: srv.URL, runID: "r", seed: 1}
	r := send(t.Context(), cfg, p, nil, io.Discard)
	s := report{cfg: cfg, sent: r}.summary()
	if s.Sent+s.Behind != 100 {
		t.Errorf("sent %d + behind %d, want the 100 scheduled", s.Sent, s.Behind)
	}
	if s.Behind < 50 {
		t.Errorf("behind = %d; 2 workers at 200ms each cannot take 100 orders a second", s.Behind)
	}
	if r.elapsed > 1500*time.Millisecond {
		t.Errorf("sending took %s, want about the 1s duration", r.elapsed)
	}
}

// While the pipeline lags, verification reads only the oldest orders in flight instead of
// every one of them on every pass.
func TestCheckOrders_StopsAPassAtTheFirstOrdersInFlight(t *testing.T) {
	var mu sync.Mutex
	reads := 0
	srv := httptest.NewServer(batchGet(t, func(id string) string {
		mu.Lock()
		reads++
		mu.Unlock()
		if id < "o01000" { // the oldest thousand are settled
			return "confirmed"
		}
		return "pending"
	}))
	defer srv.Close()
	var ids []string
	for i := range 50000 {
		ids = append(ids, fmt.Sprintf("o%05d", i))
	}
	v := &verification{orders: map[string]orderView{}, orderErrs: map[string]error{}}
	pending := checkOrders(t.Context(), srv.Client(), srv.URL, ids, 4, notFinalBudget, v)
	if len(pending) != 49000 || pending[0] != "o01000" || pending[len(pending)-1] != "o49999" {
		t.Errorf("pending = %d ids from %s, want the 49000 from o01000 on, oldest first", len(pending), pending[0])
	}
	if reads > (1+1+4)*batchGetSize {
		t.Errorf("%d orders read in one pass, want the settled batch, the first batch in flight and at most the 4 reads in flight beside it", reads)
	}
}

// batchGet serves POST /v1/orders:batchGet (and /readyz) with the status status gives
// each id ("" for an id it does not know), and POST /v1/orders as a 202.
func batchGet(t *testing.T, status func(id string) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/orders:batchGet" {
			return
		}
		var req struct {
			IDs []string `json:"ids"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.IDs) == 0 || len(req.IDs) > batchGetSize {
			t.Errorf("batchGet body: %v, %d ids", err, len(req.IDs))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		type view struct {
			ID        string `json:"id"`
			Status    string `json:"status"`
			CreatedAt string `json:"created_at"`
			UpdatedAt string `json:"updated_at"`
		}
		res := struct {
			Orders   []view   `json:"orders"`
			NotFound []string `json:"not_found"`
		}{NotFound: []string{}}
		for _, id := range req.IDs {
			if st := status(id); st != "" {
				res.Orders = append(res.Orders, view{id, st, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"})
			} else {
				res.NotFound = append(res.NotFound, id)
			}
		}
		_ = json.NewEncoder(w).Encode(res)
	}
}

// An open-ended run sends until Stop is closed, across more orders than one block of its
// schedule holds, and then verifies what it sent as a run with an end would: every order
// the service accepted is counted and read back, none is lost at a block's edge.
func TestRun_OpenEndedUntilStop(t *testing.T) {
	const stopAfter = scheduleBlock + 500
	var mu sync.Mutex
	posted := 0
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/readyz":
		case r.URL.Path == "/v1/orders":
			mu.Lock()
			posted++
			n := posted
			if n == stopAfter {
				close(stop)
			}
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"id":"o%06d","status":"pending"}`, n)
		default:
			batchGet(t, func(string) string { return "confirmed" })(w, r)
		}
	}))
	defer srv.Close()
	cfg := Config{URL: srv.URL, Rate: 20000, Stop: stop, Concurrency: 8, Verify: true, Timeout: time.Minute}
	var out strings.Builder
	s, err := Run(t.Context(), cfg, &out, io.Discard)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if s.Accepted != posted || s.Accepted < stopAfter {
		t.Errorf("accepted %d, the service got %d (stop after %d)", s.Accepted, posted, stopAfter)
	}
	if s.Confirmed != s.Accepted || s.Lost != 0 || !s.Verified {
		t.Errorf("summary %s: want every accepted order confirmed, none lost", s)
	}
	if s.Scheduled != s.Sent+s.Behind {
		t.Errorf("scheduled %d, sent %d + behind %d", s.Scheduled, s.Sent, s.Behind)
	}
	if !strings.Contains(out.String(), "until stopped") {
		t.Errorf("the run's first line does not say it runs until stopped:\n%s", out.String())
	}
}

// Orders that never settle (a consumer skipped them) end every pass early; verification
// still reads the newer orders behind them before it gives up, so only the orders it saw
// not final count as not final.
func TestVerify_ReadsEveryOrderBehindOrdersThatNeverSettle(t *testing.T) {
	srv := httptest.NewServer(batchGet(t, func(id string) string {
		switch {
		case id == "o00500":
			return "" // not known to the service: never final
		case id < "o00300": // the oldest 300 are stuck
			return "pending"
		}
		return "confirmed"
	}))
	defer srv.Close()
	var sent sendReport
	for i := range 3000 {
		sent.orders = append(sent.orders, placed{sent: true, id: fmt.Sprintf("o%05d", i), attempts: 1})
	}
	cfg := Config{URL: srv.URL, Timeout: time.Second, Concurrency: 8, Verify: true}
	v := verify(t.Context(), cfg, srv.Client(), nil, sent, io.Discard)
	s := report{cfg: cfg, sent: sent, verified: v}.summary()
	if s.NotFinal != 301 || s.Confirmed != 2699 {
		t.Errorf("not final %d, confirmed %d: want the 300 stuck orders and the unknown one not final and the 2699 others confirmed", s.NotFinal, s.Confirmed)
	}
	if err := v.orderErrs["o00500"]; !errors.Is(err, errNotFound) {
		t.Errorf("the unknown order's error is %v, want %v", err, errNotFound)
	}
}

package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"loudly/services/events"
)

// kind is what an order is made to exercise, and so which outcome it should get.
type kind int

const (
	kindPlain   kind = iota // plentiful SKUs only: confirmed
	kindLimited             // includes LIMITED-001 (100 units): confirmed until it runs out, then insufficient_stock
	kindUnknown             // includes NOPE-<n>, which no catalog has: unknown_sku
	kindSoldOut             // includes SOLDOUT-001 (0 units): insufficient_stock
)

func (k kind) String() string {
	switch k {
	case kindLimited:
		return "limited"
	case kindUnknown:
		return "unknown_sku"
	case kindSoldOut:
		return "sold_out"
	default:
		return "plain"
	}
}

// expected reports whether a final status and reason are what an order of this kind
// should get from the demo catalog.
func (k kind) expected(status, reason string) bool {
	switch k {
	case kindPlain:
		return status == "confirmed"
	case kindLimited:
		return status == "confirmed" || (status == "rejected" && reason == "insufficient_stock")
	case kindUnknown:
		return status == "rejected" && reason == "unknown_sku"
	case kindSoldOut:
		return status == "rejected" && reason == "insufficient_stock"
	}
	return false
}

// The demo catalog (services/inventory/inventory/migrations/00001_stock.sql).
var plentiful = []string{"BOOK-001", "BOOK-002", "MUG-001", "SHIRT-S", "SHIRT-M", "SHIRT-L", "STICKER-001", "PAGER-001"}

const (
	skuLimited = "LIMITED-001"
	skuSoldOut = "SOLDOUT-001"
)

// OrderRequest is the body of POST /v1/orders.
type OrderRequest struct {
	CustomerID string        `json:"customer_id"`
	Lines      []events.Line `json:"lines"`
}

// newOrder builds order n of a run. Each order has its own generator, derived from the
// seed and n, so a run's mix is the same whatever order the workers send it in.
func newOrder(seed uint64, n int) (kind, OrderRequest) {
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	k := kindPlain
	switch u := rng.Float64(); {
	case u < 0.01:
		k = kindSoldOut
	case u < 0.03:
		k = kindUnknown
	case u < 0.06:
		k = kindLimited
	}
	extra := 1 + rng.IntN(3) // plain orders: 1-3 lines
	if k != kindPlain {
		extra = rng.IntN(3) // besides the special line: 0-2 lines
	}
	skus := append([]string(nil), plentiful...)
	rng.Shuffle(len(skus), func(i, j int) { skus[i], skus[j] = skus[j], skus[i] })
	lines := make([]events.Line, 0, extra+1)
	for _, sku := range skus[:extra] {
		lines = append(lines, events.Line{SKU: sku, Quantity: 1 + rng.IntN(3)})
	}
	var special events.Line
	switch k {
	case kindLimited:
		// 1-5 units: about 3% of 2000 orders ask for ~180 units, so 100 run out mid-run.
		special = events.Line{SKU: skuLimited, Quantity: 1 + rng.IntN(5)}
	case kindUnknown:
		special = events.Line{SKU: fmt.Sprintf("NOPE-%d", n), Quantity: 1}
	case kindSoldOut:
		special = events.Line{SKU: skuSoldOut, Quantity: 1}
	}
	if k != kindPlain {
		at := rng.IntN(len(lines) + 1)
		lines = slices.Insert(lines, at, special)
	}
	return k, OrderRequest{CustomerID: fmt.Sprintf("load-%d", n), Lines: lines}
}

// placed is what happened to one order sent to the API.
type placed struct {
	sent     bool   // a worker took it (false: the run was behind or interrupted)
	kind     kind   // what it exercises
	id       string // the order id, when the API accepted it
	err      error  // why it was not accepted
	attempts int    // requests made for it
}

// maxRetries is how often a request is repeated after a connection error or a 5xx.
const maxRetries = 3

// placer sends orders to the API.
type placer struct {
	client  *http.Client
	baseURL string
	runID   string // makes Idempotency-Keys unique across runs
	seed    uint64
}

func newHTTPClient(concurrency int) *http.Client {
	// As many idle connections as requests in flight: with Go's default of 2 per host,
	// a steady load would open and close connections all the time.
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        concurrency * 2,
			MaxIdleConnsPerHost: concurrency * 2,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// place sends order n. A connection error, a 429 or a 5xx is retried with the same
// Idempotency-Key and body, so a request that did reach the database the first time is
// answered with the same order instead of creating a second one.
func (p *placer) place(ctx context.Context, n int) placed {
	k, req := newOrder(p.seed, n)
	res := placed{sent: true, kind: k}
	body, err := json.Marshal(req)
	if err != nil {
		res.err = err
		return res
	}
	key := fmt.Sprintf("load-%s-%d", p.runID, n)
	// A request under way when the run is interrupted still gets its answer (the client
	// timeout bounds it): otherwise an order the service accepted would be reported as
	// not accepted, and never verified.
	reqCtx := context.WithoutCancel(ctx)
	for attempt := 0; ; attempt++ {
		res.attempts = attempt + 1
		id, retry, err := p.post(reqCtx, key, body)
		if err == nil {
			res.id = id
			return res
		}
		res.err = err
		if !retry || attempt == maxRetries || ctx.Err() != nil {
			return res
		}
		select {
		case <-ctx.Done():
			return res
		case <-time.After(100 * time.Millisecond << attempt):
		}
	}
}

// post makes one request; retry says whether the failure is worth another attempt.
func (p *placer) post(ctx context.Context, key string, body []byte) (id string, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.baseURL+"/v1/orders", bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := p.client.Do(req)
	if err != nil {
		return "", true, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", true, fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		err := fmt.Errorf("POST /v1/orders: %s: %s", resp.Status, strings.TrimSpace(string(b)))
		return "", resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
	}
	var created struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(b, &created); err != nil || created.ID == "" {
		return "", false, fmt.Errorf("POST /v1/orders: 202 without an order id: %q", b)
	}
	return created.ID, false, nil
}

// checkReachable fails when nothing answers at the order service's address, so a typo in
// -url is one clear error instead of thousands of failed requests.
func checkReachable(ctx context.Context, client *http.Client, baseURL string) (ready bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/readyz", nil)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("order service at %s: %w", baseURL, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, nil
}

// orderView is the part of an order (POST /v1/orders:batchGet) the verification reads.
type orderView struct {
	ID        string     `json:"id"`
	Status    string     `json:"status"`
	Reason    string     `json:"reason"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	SettledAt *time.Time `json:"settled_at"`
}

// final reports whether the order has reached a terminal status.
func (o orderView) final() bool {
	switch o.Status {
	case "confirmed", "rejected", "failed":
		return true
	}
	return false
}

// latency is the server-side time from acceptance to the final status (settled_at, which
// every final status has; updated_at stands in for a server that did not set it).
func (o orderView) latency() time.Duration {
	end := o.UpdatedAt
	if o.SettledAt != nil {
		end = *o.SettledAt
	}
	return max(end.Sub(o.CreatedAt), 0)
}

// batchGetSize is how many orders one read asks for: the order service's limit.
const batchGetSize = 1000

// errNotFound is the answer for an id the service does not know.
var errNotFound = errors.New("order not found")

// getOrders reads up to batchGetSize orders in one POST /v1/orders:batchGet. An id the
// service does not know gets errNotFound in errs; a failed read fails them all.
func getOrders(ctx context.Context, client *http.Client, baseURL string, ids []string) (map[string]orderView, map[string]error, error) {
	body, err := json.Marshal(struct {
		IDs []string `json:"ids"`
	}{ids})
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/v1/orders:batchGet", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("POST /v1/orders:batchGet (%d ids): %s: %s", len(ids), resp.Status, strings.TrimSpace(string(b)))
	}
	var got struct {
		Orders   []orderView `json:"orders"`
		NotFound []string    `json:"not_found"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		return nil, nil, fmt.Errorf("POST /v1/orders:batchGet: %w", err)
	}
	views := make(map[string]orderView, len(got.Orders))
	for _, o := range got.Orders {
		views[o.ID] = o
	}
	errs := map[string]error{}
	for _, id := range got.NotFound {
		errs[id] = errNotFound
	}
	return views, errs, nil
}

// NewOrder is order n of the mix seed gives: what a run with that seed sends as its
// n-th order (from 1), for a test that needs the same orders without the HTTP API.
func NewOrder(seed uint64, n int) OrderRequest {
	_, req := newOrder(seed, n)
	return req
}

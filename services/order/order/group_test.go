package order

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"loudly/internal/testenv"
)

// queueWhileBusy takes every committer of r's grouper, runs send for each of n requests
// concurrently, waits until all n are queued, and frees the committers: the first free one
// then commits the whole queue as one group. It returns the answers in send's order.
func queueWhileBusy(t *testing.T, r *running, n int, send func(i int) response) []response {
	t.Helper()
	g := r.svc.groups
	g.first <- struct{}{}
	for range cap(g.more) {
		g.more <- struct{}{}
	}
	out := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i] = send(i) })
	}
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("%d accepts queued", n), func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == n
	})
	for range cap(g.more) {
		<-g.more
	}
	<-g.first
	wg.Wait()
	return out
}

// Accepts that wait together are committed together: one transaction for the group, and
// each order with its own history row, event (carrying its own request's trace) and key.
func TestAccept_QueuedRequestsCommitAsOneGroup(t *testing.T) {
	r := startOrder(t)
	const n = 10
	res := queueWhileBusy(t, r, n, func(i int) response {
		return r.do(t, "POST", "/v1/orders", "application/json", goodOrder, map[string]string{"Idempotency-Key": fmt.Sprintf("group-%d", i)})
	})
	for i, x := range res {
		if x.status != http.StatusAccepted {
			t.Fatalf("request %d: %d %s, want 202", i, x.status, x.raw)
		}
	}
	for _, table := range []string{"orders.idempotency_keys", "orders.orders", "orders.order_history", "orders.outbox"} {
		if got := r.count(t, table); got != n {
			t.Errorf("%s has %d rows, want %d", table, got, n)
		}
	}
	// now() is the transaction's start: one value means one transaction.
	var txs int
	if err := r.db.QueryRow(context.Background(), `SELECT count(DISTINCT created_at) FROM orders.orders`).Scan(&txs); err != nil {
		t.Fatal(err)
	}
	if txs != 1 {
		t.Errorf("the %d queued orders were written in %d transactions, want 1", n, txs)
	}
	// Each event carries the trace of the request it answers, not the group's first.
	var traces int
	if err := r.db.QueryRow(context.Background(), `SELECT count(DISTINCT o.trace_id)
		FROM orders.outbox ob JOIN orders.order_history h ON h.event_id = ob.event_id JOIN orders.orders o ON o.id = h.order_id
		WHERE ob.headers->'traceparent'->>0 LIKE '00-' || o.trace_id || '-%'`).Scan(&traces); err != nil {
		t.Fatal(err)
	}
	if traces != n {
		t.Errorf("%d events carry their own request's trace, want %d", traces, n)
	}
	// The answers replay under their keys, as for an order accepted alone.
	again := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, map[string]string{"Idempotency-Key": "group-3"})
	if again.status != http.StatusAccepted || again.header.Get("Idempotent-Replayed") != "true" || again.raw != res[3].raw {
		t.Errorf("replay of a grouped accept: %d (replayed %q) %s, want the first answer %s", again.status,
			again.header.Get("Idempotent-Replayed"), again.raw, res[3].raw)
	}
}

// A group that cannot commit (here: a key already taken, with the same request and with
// another) commits nothing, and each of its requests is then decided alone: the fresh ones
// are accepted, the replay gets the first answer and the conflict its 409.
func TestAccept_AFailedGroupIsDecidedRequestByRequest(t *testing.T) {
	r := startOrder(t)
	first := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, map[string]string{"Idempotency-Key": "taken"})
	if first.status != http.StatusAccepted {
		t.Fatalf("first: %d %s", first.status, first.raw)
	}
	other := strings.Replace(goodOrder, `"quantity":2`, `"quantity":3`, 1)
	const fresh = 6
	res := queueWhileBusy(t, r, fresh+2, func(i int) response {
		switch i {
		case fresh:
			return r.do(t, "POST", "/v1/orders", "application/json", goodOrder, map[string]string{"Idempotency-Key": "taken"})
		case fresh + 1:
			return r.do(t, "POST", "/v1/orders", "application/json", other, map[string]string{"Idempotency-Key": "taken"})
		}
		return r.do(t, "POST", "/v1/orders", "application/json", goodOrder, map[string]string{"Idempotency-Key": fmt.Sprintf("fresh-%d", i)})
	})
	for i := range fresh {
		if res[i].status != http.StatusAccepted || res[i].header.Get("Idempotent-Replayed") != "" {
			t.Errorf("fresh request %d: %d (replayed %q) %s, want a new 202", i, res[i].status, res[i].header.Get("Idempotent-Replayed"), res[i].raw)
		}
	}
	if x := res[fresh]; x.status != http.StatusAccepted || x.header.Get("Idempotent-Replayed") != "true" || x.raw != first.raw {
		t.Errorf("replay in a failed group: %d (replayed %q) %s, want the first answer %s", x.status, x.header.Get("Idempotent-Replayed"), x.raw, first.raw)
	}
	if x := res[fresh+1]; x.status != http.StatusConflict {
		t.Errorf("conflict in a failed group: %d %s, want 409", x.status, x.raw)
	}
	if got := r.tel.Decisions(map[string]string{"stage": "batch", "reason": "accept_group_failed"}); len(got) != 1 {
		t.Errorf("%d accept_group_failed decisions, want the group's failure recorded once", len(got))
	}
	for _, table := range []string{"orders.orders", "orders.order_history", "orders.outbox"} {
		if got := r.count(t, table); got != 1+fresh {
			t.Errorf("%s has %d rows, want %d (the first order and the fresh ones)", table, got, 1+fresh)
		}
	}
}

// One committer works alone while less than a full group waits: requests queued behind
// its commit stay queued (to join the next group) even though other committers are idle.
// Once a full group waits, another committer takes it beside the busy one.
func TestAccept_MoreCommittersOnlyForAFullGroup(t *testing.T) {
	r := startOrder(t)
	g := r.svc.groups
	if cap(g.more) == 0 {
		t.Fatalf("the default allows %d committers beside the first, want some", cap(g.more))
	}
	g.first <- struct{}{} // the first committer is busy until released below
	released := false
	release := func() {
		if !released {
			released = true
			<-g.first
		}
	}
	defer release()

	res := make([]response, maxGroup)
	var wg sync.WaitGroup
	send := func(i int) {
		wg.Go(func() {
			res[i] = r.do(t, "POST", "/v1/orders", "application/json", goodOrder, map[string]string{"Idempotency-Key": fmt.Sprintf("more-%d", i)})
		})
	}
	const few = 5
	for i := range few {
		send(i)
	}
	queued := func(n int) func() bool {
		return func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.queue) == n
		}
	}
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("%d accepts queued", few), queued(few))
	// Each request decides whether to commit after it has queued itself; once all of them
	// are parked in create's select, each has decided, and one allowed to take another
	// committer would have taken it instead.
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("%d accepts parked, their decision made", few), func() bool {
		return goroutinesParkedIn("select", "order.(*grouper).create(") == few
	})
	if !queued(few)() || len(g.more) != 0 || r.count(t, "orders.orders") != 0 {
		t.Fatalf("with the first committer busy and %d requests waiting, another committer started (%d busy, %d orders written)",
			few, len(g.more), r.count(t, "orders.orders"))
	}

	// A full group: the last request to arrive finds it waiting and commits it, while the
	// first committer is still busy.
	for i := few; i < maxGroup; i++ {
		send(i)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		release()
		<-done
		t.Fatalf("a full group of %d waited for the first committer", maxGroup)
	}
	for i, x := range res {
		if x.status != http.StatusAccepted {
			t.Fatalf("request %d: %d %s, want 202", i, x.status, x.raw)
		}
	}
	var txs int
	if err := r.db.QueryRow(context.Background(), `SELECT count(DISTINCT created_at) FROM orders.orders`).Scan(&txs); err != nil {
		t.Fatal(err)
	}
	if txs != 1 || r.count(t, "orders.orders") != maxGroup {
		t.Errorf("%d orders in %d transactions, want %d in 1", r.count(t, "orders.orders"), txs, maxGroup)
	}
}

// goroutinesParkedIn counts the goroutines blocked in state (as a goroutine dump shows it:
// "select", "chan receive") with fn among their frames.
func goroutinesParkedIn(state, fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "["+state) && strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

package order

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// The accept transaction is one pipelined batch (store.create): these tests pin down what
// that must not change — it is all or nothing, and an Idempotency-Key still gives every
// request under it the first answer, byte for byte, however the requests interleave.

func TestAccept_AFailedStatementLeavesNothingBehind(t *testing.T) {
	r := startOrder(t)
	ctx := context.Background()
	// The outbox insert is the batch's last statement: make PostgreSQL refuse it, so the
	// key, the order and its history — already executed in the same batch — must go too.
	if _, err := r.db.Exec(ctx, `CREATE FUNCTION orders.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON orders.outbox FOR EACH ROW EXECUTE FUNCTION orders.refuse()`); err != nil {
		t.Fatal(err)
	}
	key := map[string]string{"Idempotency-Key": "rolled-back"}
	res := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, key)
	if res.status != http.StatusInternalServerError {
		t.Fatalf("with the outbox refusing: %d %s, want 500", res.status, res.raw)
	}
	for _, table := range []string{"orders.idempotency_keys", "orders.orders", "orders.order_history", "orders.outbox"} {
		if n := r.count(t, table); n != 0 {
			t.Errorf("%s has %d rows after the failed accept, want 0", table, n)
		}
	}

	if _, err := r.db.Exec(ctx, `DROP TRIGGER refuse ON orders.outbox`); err != nil {
		t.Fatal(err)
	}
	again := r.do(t, "POST", "/v1/orders", "application/json", goodOrder, key)
	if again.status != http.StatusAccepted || again.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the same key after the failure: %d (replayed %q) %s, want a fresh 202: the failed attempt must not have kept the key",
			again.status, again.header.Get("Idempotent-Replayed"), again.raw)
	}
	for _, table := range []string{"orders.idempotency_keys", "orders.orders", "orders.order_history", "orders.outbox"} {
		if n := r.count(t, table); n != 1 {
			t.Errorf("%s has %d rows after the accept, want 1", table, n)
		}
	}
}

func TestAccept_ConcurrentRequestsUnderOneKeyGetTheFirstAnswer(t *testing.T) {
	r := startOrder(t)
	const n = 8
	key := map[string]string{"Idempotency-Key": "raced"}
	other := strings.Replace(goodOrder, `"quantity":2`, `"quantity":3`, 1)
	var wg sync.WaitGroup
	same := make([]response, n)
	conflicting := make([]response, n)
	for i := range n {
		wg.Go(func() { same[i] = r.do(t, "POST", "/v1/orders", "application/json", goodOrder, key) })
		wg.Go(func() { conflicting[i] = r.do(t, "POST", "/v1/orders", "application/json", other, key) })
	}
	wg.Wait()

	// Whichever body took the key first, the requests with that body all get its answer,
	// and every request with the other body is a conflict.
	winners, losers := same, conflicting
	if same[0].status == http.StatusConflict {
		winners, losers = conflicting, same
	}
	fresh := 0
	for i, res := range winners {
		if res.status != http.StatusAccepted || res.raw != winners[0].raw {
			t.Errorf("request %d with the winning body: %d %s, want 202 %s", i, res.status, res.raw, winners[0].raw)
		}
		if res.header.Get("Idempotent-Replayed") == "" {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d requests were accepted afresh, want exactly 1 (the rest replays)", fresh)
	}
	for i, res := range losers {
		if res.status != http.StatusConflict {
			t.Errorf("request %d with the other body: %d %s, want 409", i, res.status, res.raw)
		}
	}
	if n := r.count(t, "orders.orders"); n != 1 {
		t.Errorf("%d orders, want 1", n)
	}
	if n := r.count(t, "orders.outbox"); n != 1 {
		t.Errorf("%d outbox rows, want 1", n)
	}
	if got := len(r.tel.Decisions(map[string]string{"outcome": "duplicate", "reason": "idempotency_replay"})); got != n-1 {
		t.Errorf("%d replays recorded, want %d", got, n-1)
	}
}

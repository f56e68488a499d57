package inventory

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/envelope"
	"loudly/pkg/idempotency"
	"loudly/pkg/outbox"
	"loudly/pkg/postgres"
	"loudly/services/events"
)

// Rejection reasons.
const (
	ReasonInsufficientStock = "insufficient_stock"
	ReasonUnknownSKU        = "unknown_sku"
)

// store is the inventory service's PostgreSQL state, all in schema "inventory".
//
// Reservations go through two seams that drills decorate (drills.go), so a drill fault
// acts where a real fault would, inside the transaction, while the business code reads as
// production code: opened queues what runs right after BEGIN, for n reservations (nothing,
// in production), and stockRead sees the stock rows once they are locked and read.
type store struct {
	pool      *pgxpool.Pool
	outbox    *outbox.Outbox
	processed *idempotency.Table // the order events decided (inventory.processed_events)
	opened    func(ctx context.Context, n int, b *pgx.Batch)
	stockRead func(ctx context.Context, available map[string]int)
}

func newStore(pool *pgxpool.Pool, ob *outbox.Outbox, processed *idempotency.Table) *store {
	return &store{pool: pool, outbox: ob, processed: processed,
		opened:    func(context.Context, int, *pgx.Batch) {},
		stockRead: func(context.Context, map[string]int) {}}
}

// decision is what reserve decided for one order event.
type decision struct {
	duplicate bool   // the event was decided before; nothing changed
	rejected  bool   // the order was refused, for reason
	reason    string // insufficient_stock or unknown_sku
	sku       string
}

// request is one order.placed event to decide, with the context of its message (its
// trace: the result event and the reservation record continue it).
type request struct {
	ctx   context.Context
	event envelope.Envelope
	order events.OrderPlaced
}

// reserve decides a batch of order.placed events in one transaction, in stream order. It
// claims every event id in the service's record of processed events (pkg/idempotency),
// locks every stock row the batch touches once (in SKU order, so concurrent batches cannot
// deadlock), decides each new order against the stock left by the orders before it — all
// its lines or none — updates each row once, records each decision and writes every result
// event to the outbox, then commits. Any error leaves nothing behind, so the caller can
// decide the batch again, or each event on its own.
//
// The claim comes before the locks: a concurrent batch deciding the same event (a
// redelivery while the first attempt still runs) waits on the event's row and then finds
// it seen, and it waits before taking any stock row, so the hot rows are never held by a
// batch that waits for another. Claims are taken in id order and always before stock, so
// two batches cannot wait on each other.
//
// It takes two round trips, each a pipelined batch (postgres.Begin, then Commit): BEGIN,
// the claim and the locks; then the writes and COMMIT. The hot rows stay locked from the
// first batch's locks to the second's commit, so each round trip more inside the
// transaction is time every other batch waits (five, before: BEGIN, lock, read, writes,
// COMMIT).
func (s *store) reserve(ctx context.Context, reqs []request) ([]decision, error) {
	var skus []string
	claimed := make([]idempotency.Event, len(reqs))
	for i, r := range reqs {
		claimed[i] = idempotency.Event{ID: r.event.ID, Key: r.event.Key}
		for _, l := range r.order.Lines {
			skus = append(skus, l.SKU)
		}
	}
	slices.Sort(skus)
	skus = slices.Compact(skus)

	open := &pgx.Batch{}
	// The lock joins the batch's array against stock: planned to probe the index
	// (postgres.IndexPlans), as the other lookups by key of a batch are.
	postgres.IndexPlans(open)
	s.opened(ctx, len(reqs), open)
	claim := s.processed.Claim(open, claimed)
	if err := claim.Err(); err != nil {
		return nil, err
	}
	// The stock rows are locked in SKU order, so concurrent batches cannot deadlock.
	available := map[string]int{}
	open.Queue(lockStockSQL, skus).Query(func(rows pgx.Rows) error {
		var sku string
		var n int
		_, err := pgx.ForEachRow(rows, []any{&sku, &n}, func() error { available[sku] = n; return nil })
		return err
	})
	tx, err := postgres.Begin(ctx, s.pool, open)
	if err != nil {
		return nil, err
	}
	defer tx.Close()
	s.stockRead(ctx, available)

	ds := make([]decision, len(reqs))
	taken := map[string]int{} // per SKU, what this batch reserves
	var (
		resIDs, resOrders, resOutcomes, resReasons, resTraces, resResults []string
		resLines                                                          [][]byte
		results                                                           []outbox.Message
		resultCtx                                                         []context.Context
	)
	now := time.Now()
	for i, r := range reqs {
		if claim.Seen(i) {
			ds[i] = decision{duplicate: true} // decided before, or earlier in this batch
			continue
		}
		d := decide(r.order, available)
		if !d.rejected {
			for _, l := range r.order.Lines {
				available[l.SKU] -= l.Quantity
				taken[l.SKU] += l.Quantity
			}
		}
		ds[i] = d

		outcome, typ, subject := "reserved", events.InventoryReservedEvent, events.SubjectInventoryReserved
		result := events.InventoryResult{}
		if d.rejected {
			outcome, typ, subject = "rejected", events.InventoryRejectedEvent, events.SubjectInventoryRejected
			result = events.InventoryResult{Reason: d.reason, SKU: d.sku}
		}
		renv, payload, err := typ.New(r.event.Key, result, now)
		if err != nil {
			return nil, err
		}
		lb, err := json.Marshal(r.order.Lines)
		if err != nil {
			return nil, err
		}
		traceID := ""
		if sc := trace.SpanContextFromContext(r.ctx); sc.IsValid() {
			traceID = sc.TraceID().String()
		}
		resIDs, resOrders, resOutcomes = append(resIDs, r.event.ID), append(resOrders, r.event.Key), append(resOutcomes, outcome)
		resReasons, resLines, resTraces = append(resReasons, d.reason), append(resLines, lb), append(resTraces, traceID)
		resResults = append(resResults, renv.ID)
		results = append(results, outbox.Message{EventID: renv.ID, Subject: subject, Payload: payload})
		resultCtx = append(resultCtx, r.ctx)
	}
	if len(results) == 0 {
		return ds, tx.Commit(ctx, nil) // every event was decided before: nothing to write
	}
	// The writes and COMMIT go as one pipelined batch: one round trip for the stock, the
	// reservations, the outbox and the commit. A statement that fails makes PostgreSQL
	// skip the rest, COMMIT included, and the deferred Close ends the transaction.
	b := &pgx.Batch{}
	if len(taken) > 0 {
		tskus, tqty := make([]string, 0, len(taken)), make([]int32, 0, len(taken))
		for sku, n := range taken {
			tskus, tqty = append(tskus, sku), append(tqty, int32(n))
		}
		b.Queue(takeStockSQL, tskus, tqty)
	}
	b.Queue(`INSERT INTO inventory.reservations (event_id, order_id, outcome, reason, lines, trace_id, result_event_id)
		SELECT e, o, oc, nullif(rs, ''), l, nullif(tr, ''), re
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::uuid[]) AS t(e, o, oc, rs, l, tr, re)`,
		resIDs, resOrders, resOutcomes, resReasons, resLines, resTraces, resResults)
	if err := s.outbox.Queue(ctx, b, results, func(i int) context.Context { return resultCtx[i] }); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx, b); err != nil {
		return nil, err
	}
	s.outbox.Notify()
	return ds, nil
}

// The statements of reserve that look the batch's rows up by key, each planned to probe an
// index whatever the tables' size (postgres.IndexPlans).
const (
	// lockStockSQL locks the stock rows of the SKUs $1, in SKU order.
	lockStockSQL = `SELECT sku, available FROM inventory.stock WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`
	// takeStockSQL reserves $2[i] of the SKU $1[i].
	takeStockSQL = `UPDATE inventory.stock AS s SET available = s.available - t.n, reserved = s.reserved + t.n
		FROM unnest($1::text[], $2::int[]) AS t(sku, n) WHERE s.sku = t.sku`
)

// decide is the business rule for one order: every line reserved, or the order rejected
// for its first line (in SKU order) that is unknown or short.
func decide(order events.OrderPlaced, available map[string]int) decision {
	lines := slices.Clone(order.Lines)
	slices.SortFunc(lines, func(a, b events.Line) int { return strings.Compare(a.SKU, b.SKU) })
	for _, l := range lines {
		have, known := available[l.SKU]
		switch {
		case !known:
			return decision{rejected: true, reason: ReasonUnknownSKU, sku: l.SKU}
		case have < l.Quantity:
			return decision{rejected: true, reason: ReasonInsufficientStock, sku: l.SKU}
		}
	}
	return decision{}
}

// Stock is one SKU's stock.
type Stock struct {
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	Available int    `json:"available"`
	Reserved  int    `json:"reserved"`
}

func (s *store) stock(ctx context.Context) ([]Stock, error) {
	rows, err := s.pool.Query(ctx, `SELECT sku, name, available, reserved FROM inventory.stock ORDER BY sku`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Stock])
}

// Reservation is the decision taken for one order event, and the result event it
// produced as the inventory outbox knows it.
type Reservation struct {
	EventID   string        `json:"event_id"`
	OrderID   string        `json:"order_id"`
	Outcome   string        `json:"outcome"`
	Reason    string        `json:"reason,omitempty"`
	Lines     []events.Line `json:"lines"`
	TraceID   string        `json:"trace_id,omitempty"`
	DecidedAt time.Time     `json:"decided_at"`
	Result    *outbox.Entry `json:"result,omitempty"`
}

func (s *store) reservations(ctx context.Context, orderID string) ([]Reservation, error) {
	rows, err := s.pool.Query(ctx, `SELECT event_id::text, order_id::text, outcome, coalesce(reason, ''), lines,
			coalesce(trace_id, ''), decided_at, coalesce(result_event_id::text, '')
		FROM inventory.reservations WHERE order_id = $1 ORDER BY decided_at`, orderID)
	if err != nil {
		return nil, err
	}
	var resultIDs []string
	res, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Reservation, error) {
		var x Reservation
		var lb []byte
		var resultID string
		if err := r.Scan(&x.EventID, &x.OrderID, &x.Outcome, &x.Reason, &lb, &x.TraceID, &x.DecidedAt, &resultID); err != nil {
			return x, err
		}
		if resultID != "" {
			resultIDs = append(resultIDs, resultID)
			x.Result = &outbox.Entry{EventID: resultID}
		}
		return x, json.Unmarshal(lb, &x.Lines)
	})
	if err != nil {
		return nil, err
	}
	entries, err := s.outbox.Entries(ctx, resultIDs)
	if err != nil {
		return nil, err
	}
	for i := range res {
		if res[i].Result != nil {
			if e, ok := entries[res[i].Result.EventID]; ok {
				res[i].Result = &e
			}
		}
	}
	return res, nil
}

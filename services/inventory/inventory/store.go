package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/envelope"
	"loudly/pkg/outbox"
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
// production code: begin starts the transaction, lockStock locks and reads the stock rows.
type store struct {
	pool      *pgxpool.Pool
	outbox    *outbox.Outbox
	begin     func(context.Context) (pgx.Tx, error)
	lockStock func(ctx context.Context, tx pgx.Tx, skus []string) (map[string]int, error)
}

func newStore(pool *pgxpool.Pool, ob *outbox.Outbox) *store {
	return &store{pool: pool, outbox: ob, begin: pool.Begin, lockStock: lockStock}
}

// lockStock locks the stock rows of skus, in SKU order so that concurrent transactions
// cannot deadlock, and returns what is available of each known SKU.
func lockStock(ctx context.Context, tx pgx.Tx, skus []string) (map[string]int, error) {
	rows, err := tx.Query(ctx, `SELECT sku, available FROM inventory.stock WHERE sku = ANY($1) ORDER BY sku FOR UPDATE`, skus)
	if err != nil {
		return nil, err
	}
	available := map[string]int{}
	var sku string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&sku, &n}, func() error { available[sku] = n; return nil }); err != nil {
		return nil, err
	}
	return available, nil
}

// decision is what reserve decided for one order event.
type decision struct {
	duplicate bool   // the event was decided before; nothing changed
	rejected  bool   // the order was refused, for reason
	reason    string // insufficient_stock or unknown_sku
	sku       string
}

// reserve decides one order.placed event in a single transaction: it locks the stock rows
// of every line (in SKU order, so concurrent orders cannot deadlock), reserves all lines or
// none, records the event id, and writes the result event to the outbox. Any error leaves
// nothing behind, so the caller can retry.
func (s *store) reserve(ctx context.Context, env envelope.Envelope, order events.OrderPlaced) (decision, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return decision{}, err
	}
	defer tx.Rollback(context.Background())

	var seen bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inventory.reservations WHERE event_id = $1)`, env.ID).Scan(&seen); err != nil {
		return decision{}, err
	}
	if seen {
		return decision{duplicate: true}, nil
	}

	lines := slices.Clone(order.Lines)
	slices.SortFunc(lines, func(a, b events.Line) int { return strings.Compare(a.SKU, b.SKU) })
	skus := make([]string, len(lines))
	for i, l := range lines {
		skus[i] = l.SKU
	}
	available, err := s.lockStock(ctx, tx, skus)
	if err != nil {
		return decision{}, err
	}
	d := decision{}
	for _, l := range lines {
		have, known := available[l.SKU]
		switch {
		case !known:
			d = decision{rejected: true, reason: ReasonUnknownSKU, sku: l.SKU}
		case have < l.Quantity:
			d = decision{rejected: true, reason: ReasonInsufficientStock, sku: l.SKU}
		}
		if d.rejected {
			break
		}
	}
	if !d.rejected {
		for _, l := range lines {
			if _, err := tx.Exec(ctx, `UPDATE inventory.stock SET available = available - $2, reserved = reserved + $2 WHERE sku = $1`,
				l.SKU, l.Quantity); err != nil {
				return decision{}, err
			}
		}
	}

	outcome, typ, subject := "reserved", events.InventoryReservedEvent, events.SubjectInventoryReserved
	result := events.InventoryResult{}
	if d.rejected {
		outcome, typ, subject = "rejected", events.InventoryRejectedEvent, events.SubjectInventoryRejected
		result = events.InventoryResult{Reason: d.reason, SKU: d.sku}
	}
	lb, _ := json.Marshal(order.Lines)
	traceID := ""
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		traceID = sc.TraceID().String()
	}
	renv, payload, err := typ.New(env.Key, result, time.Now())
	if err != nil {
		return decision{}, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO inventory.reservations (event_id, order_id, outcome, reason, lines, trace_id, result_event_id)
		VALUES ($1, $2, $3, nullif($4, ''), $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
		env.ID, env.Key, outcome, d.reason, lb, traceID, renv.ID)
	if err != nil {
		return decision{}, err
	}
	if tag.RowsAffected() == 0 {
		// A concurrent delivery of the same event committed first.
		return decision{duplicate: true}, nil
	}
	if err := s.outbox.Enqueue(ctx, tx, outbox.Message{EventID: renv.ID, Subject: subject, Payload: payload}); err != nil {
		return decision{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return decision{}, fmt.Errorf("commit: %w", err)
	}
	s.outbox.Notify()
	return d, nil
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

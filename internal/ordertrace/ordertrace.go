// Package ordertrace follows one order of the demo through every hop it passes — the
// order API, the order outbox, the ORDERS stream, the inventory consumer and its outbox,
// the INVENTORY stream, the settlement and the dead letters — asking each through its own
// interface, and names the hop a pending order is stuck at. `loudly trace` prints it.
package ordertrace

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/deadletter"
	"loudly/pkg/outbox"
	"loudly/services/events"
)

// Hops of an order, in the order an order passes them.
const (
	HopAPI           = "order API"
	HopOrderOutbox   = "order outbox relay"
	HopOrdersStream  = "ORDERS stream"
	HopInventory     = "inventory consumer"
	HopInvOutbox     = "inventory outbox relay"
	HopResultsStream = "INVENTORY stream"
	HopSettlement    = "order settlement consumer"
	HopDeadLetters   = "dead letters"
	HopFailer        = "order dead-letter consumer"
)

// Step is one line of an order's timeline.
type Step struct {
	Time    time.Time `json:"time"`
	Hop     string    `json:"hop"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	TraceID string    `json:"trace_id,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// Order is what Follow finds out about one order.
type Order struct {
	OrderID    string `json:"order_id"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	TraceID    string `json:"trace_id,omitempty"`
	Timeline   []Step `json:"timeline"`
	StuckAt    string `json:"stuck_at,omitempty"` // the hop the order waits at, when it is not final
	StuckWhy   string `json:"stuck_why,omitempty"`
	GrafanaURL string `json:"grafana_url,omitempty"`
	// Logs says where the trace id can be followed when there is no trace store to link
	// (the `loudly demo`): the services' log files.
	Logs string `json:"logs,omitempty"`
}

// Shapes of the services' answers that trace reads.
type orderView struct {
	ID        string         `json:"id"`
	Status    string         `json:"status"`
	Reason    string         `json:"reason"`
	TraceID   string         `json:"trace_id"`
	CreatedAt time.Time      `json:"created_at"`
	History   []historyView  `json:"history"`
	Events    []outbox.Entry `json:"events"`
}

type historyView struct {
	Status  string    `json:"status"`
	Reason  string    `json:"reason"`
	EventID string    `json:"event_id"`
	At      time.Time `json:"at"`
}

type reservationView struct {
	EventID   string        `json:"event_id"`
	Outcome   string        `json:"outcome"`
	Reason    string        `json:"reason"`
	TraceID   string        `json:"trace_id"`
	DecidedAt time.Time     `json:"decided_at"`
	Result    *outbox.Entry `json:"result"`
}

// Sources are where Follow asks about an order: each hop through its own interface.
type Sources struct {
	HTTP         *http.Client        // for the services' APIs
	JetStream    jetstream.JetStream // for the streams and the dead letters
	OrderURL     string              // the order service's base URL
	InventoryURL string              // the inventory service's base URL
}

// Follow asks every hop about the order id and builds its timeline. When the order is
// still pending, StuckAt names the first hop it has not passed.
func Follow(ctx context.Context, src Sources, id string) (Order, error) {
	hc, js := src.HTTP, src.JetStream
	orderURL, invURL := strings.TrimRight(src.OrderURL, "/"), strings.TrimRight(src.InventoryURL, "/")
	var o orderView
	if err := getJSON(ctx, hc, orderURL+"/v1/orders/"+id, &o); err != nil {
		return Order{}, fmt.Errorf("order service: %w", err)
	}
	t := Order{OrderID: o.ID, Status: o.Status, Reason: o.Reason, TraceID: o.TraceID}
	add := func(s Step) { t.Timeline = append(t.Timeline, s) }
	add(Step{Time: o.CreatedAt, Hop: HopAPI, Outcome: "accepted", TraceID: o.TraceID})

	// The order.placed event: written to the order outbox with the order, then published.
	var placed *outbox.Entry
	for i, e := range o.Events {
		if e.Subject == events.SubjectOrderPlaced {
			placed = &o.Events[i]
		}
	}
	switch {
	case placed == nil:
		// Sent rows are removed after the relay's retention; the history still names the event.
	case placed.SentAt == nil:
		add(Step{Time: placed.WrittenAt, Hop: HopOrderOutbox, Outcome: "written", Reason: placed.LastError,
			Detail: fmt.Sprintf("event %s not published yet (%d attempts)", placed.EventID, placed.Attempts)})
	default:
		add(Step{Time: *placed.SentAt, Hop: HopOrderOutbox, Outcome: "published", Detail: "event " + placed.EventID})
		if placed.StreamSeq != nil {
			add(streamStep(ctx, js, events.StreamOrders, HopOrdersStream, uint64(*placed.StreamSeq)))
		}
	}

	var rs struct {
		Reservations []reservationView `json:"reservations"`
	}
	invErr := getJSON(ctx, hc, invURL+"/v1/reservations?order_id="+url.QueryEscape(id), &rs)
	if invErr != nil {
		// An unreachable inventory service is itself a finding, not a reason to stop.
		add(Step{Time: time.Now(), Hop: HopInventory, Outcome: "unreachable", Detail: invErr.Error()})
	}
	for _, r := range rs.Reservations {
		add(Step{Time: r.DecidedAt, Hop: HopInventory, Outcome: r.Outcome, Reason: r.Reason, TraceID: r.TraceID, Detail: "event " + r.EventID})
		if e := r.Result; e != nil && e.Subject != "" {
			if e.SentAt == nil {
				add(Step{Time: e.WrittenAt, Hop: HopInvOutbox, Outcome: "written", Reason: e.LastError,
					Detail: fmt.Sprintf("%s %s not published yet (%d attempts)", e.Subject, e.EventID, e.Attempts)})
			} else {
				add(Step{Time: *e.SentAt, Hop: HopInvOutbox, Outcome: "published", Detail: e.Subject + " " + e.EventID})
				if e.StreamSeq != nil {
					add(streamStep(ctx, js, events.StreamInventory, HopResultsStream, uint64(*e.StreamSeq)))
				}
			}
		}
	}
	for _, h := range o.History {
		switch h.Status {
		case "pending":
		case "failed": // written by the watcher of the dead letters, not by a result event
			add(Step{Time: h.At, Hop: HopFailer, Outcome: h.Status, Reason: h.Reason})
		default:
			add(Step{Time: h.At, Hop: HopSettlement, Outcome: h.Status, Reason: h.Reason, Detail: eventDetail(h.EventID)})
		}
	}
	letters, err := deadletter.List(ctx, js, 0)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return t, fmt.Errorf("dead letters: %w", err)
	}
	for _, lt := range letters {
		if letterKey(lt.Data) == id {
			add(Step{Time: lt.Time, Hop: HopDeadLetters, Outcome: lt.Outcome, Reason: lt.Reason,
				Detail: fmt.Sprintf("letter %d from consumer %s after %d deliveries", lt.Seq, lt.Consumer, lt.Deliveries)})
		}
	}
	sort.SliceStable(t.Timeline, func(i, j int) bool { return t.Timeline[i].Time.Before(t.Timeline[j].Time) })

	if o.Status == "pending" {
		t.StuckAt, t.StuckWhy = stuckAt(placed, rs.Reservations)
		if invErr != nil && t.StuckAt == HopInventory {
			t.StuckWhy = "the event is in the ORDERS stream and the inventory service does not answer: " + invErr.Error()
		}
	}
	return t, nil
}

// stuckAt names the first hop a pending order has not passed, and why it thinks so.
func stuckAt(placed *outbox.Entry, rs []reservationView) (string, string) {
	switch {
	case placed == nil:
		return HopOrderOutbox, "the order's event is not in the order outbox"
	case placed.SentAt == nil:
		return HopOrderOutbox, "the order's event is written but not published: is the order service's relay running, and NATS reachable?"
	case len(rs) == 0:
		return HopInventory, "the event is in the ORDERS stream but inventory has no decision for it: is the inventory consumer running (and not skipping)?"
	}
	last := rs[len(rs)-1]
	switch {
	case last.Result == nil || last.Result.Subject == "":
		return HopInvOutbox, "inventory decided but its result event is not in its outbox"
	case last.Result.SentAt == nil:
		return HopInvOutbox, "inventory's result event is written but not published: is the inventory relay running?"
	default:
		return HopSettlement, "the result is in the INVENTORY stream but the order is not settled: is the order service's settlement consumer running?"
	}
}

// streamStep reads a message back from its stream, proving the broker has it.
func streamStep(ctx context.Context, js jetstream.JetStream, stream, hop string, seq uint64) Step {
	s, err := js.Stream(ctx, stream)
	if err == nil {
		var m *jetstream.RawStreamMsg
		if m, err = s.GetMsg(ctx, seq); err == nil {
			return Step{Time: m.Time, Hop: hop, Outcome: "stored", Detail: fmt.Sprintf("%s seq %d", m.Subject, seq)}
		}
	}
	return Step{Hop: hop, Outcome: "unknown", Detail: fmt.Sprintf("seq %d: %v", seq, err)}
}

func eventDetail(id string) string {
	if id == "" {
		return ""
	}
	return "event " + id
}

func getJSON(ctx context.Context, hc *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("GET %s: %s: %s", u, res.Status, e.Error.Message)
		}
		return fmt.Errorf("GET %s: %s", u, res.Status)
	}
	return json.Unmarshal(body, out)
}

// GrafanaURL opens the trace in Grafana's Explore on the provisioned Tempo datasource.
func GrafanaURL(base, traceID string) string {
	base = strings.TrimRight(base, "/")
	panes := fmt.Sprintf(`{"t":{"datasource":"tempo","queries":[{"refId":"A","datasource":{"type":"tempo","uid":"tempo"},"queryType":"traceql","query":%q}],"range":{"from":"now-24h","to":"now"}}}`, traceID)
	return base + "/explore?schemaVersion=1&orgId=1&panes=" + url.QueryEscape(panes)
}

// letterKey is the entity key a dead letter's payload names — read loosely, since a letter
// is often there precisely because its event does not decode (an unknown version, a bad
// field).
func letterKey(data []byte) string {
	var loose struct {
		Key any `json:"key"`
	}
	if json.Unmarshal(data, &loose) != nil {
		return ""
	}
	key, _ := loose.Key.(string)
	return key
}

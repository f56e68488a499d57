package main

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
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/deadletter"
	"loudly/pkg/outbox"
	"loudly/services/events"
)

// Hops of an order, in the order an order passes them.
const (
	hopAPI           = "order API"
	hopOrderOutbox   = "order outbox relay"
	hopOrdersStream  = "ORDERS stream"
	hopInventory     = "inventory consumer"
	hopInvOutbox     = "inventory outbox relay"
	hopResultsStream = "INVENTORY stream"
	hopSettlement    = "order settlement consumer"
	hopDeadLetters   = "dead letters"
	hopFailer        = "order dead-letter consumer"
)

// step is one line of an order's timeline.
type step struct {
	Time    time.Time `json:"time"`
	Hop     string    `json:"hop"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	TraceID string    `json:"trace_id,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// orderTrace is what `loudly trace` finds out about one order.
type orderTrace struct {
	OrderID    string `json:"order_id"`
	Status     string `json:"status"`
	Reason     string `json:"reason,omitempty"`
	TraceID    string `json:"trace_id,omitempty"`
	Timeline   []step `json:"timeline"`
	StuckAt    string `json:"stuck_at,omitempty"` // the hop the order waits at, when it is not final
	StuckWhy   string `json:"stuck_why,omitempty"`
	GrafanaURL string `json:"grafana_url,omitempty"`
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

func runTrace(ctx context.Context, c *cli, self command, args []string) int {
	l := c.newLeaf(self, "Follows one order through every hop, each asked through its own interface: the order\n"+
		"service's API (the order, its status history and its outbox), the ORDERS stream, the\n"+
		"inventory service's API (its decision and result event), the INVENTORY stream, the\n"+
		"settlement and the dead letters. Prints a timeline and a link to the trace in Grafana;\n"+
		"when the order is not final it names the hop it is stuck at and exits 1.")
	orderURL := l.fs.String("order-url", envOr(c, "ORDER_URL", "http://127.0.0.1:8080"), "order service base `URL` ($ORDER_URL)")
	invURL := l.fs.String("inventory-url", envOr(c, "INVENTORY_URL", "http://127.0.0.1:8081"), "inventory service base `URL` ($INVENTORY_URL)")
	grafana := l.fs.String("grafana", envOr(c, "GRAFANA_URL", "http://localhost:3000"), "Grafana base `URL` for the trace link ($GRAFANA_URL)")
	asJSON := l.fs.Bool("json", false, "print one JSON document")
	pos, code, ok := l.parse(c, args, 1, 1)
	if !ok {
		return code
	}
	if _, err := uuid.Parse(pos[0]); err != nil {
		return l.usageError(c, "ORDER_ID %q is not a UUID", pos[0])
	}
	nc, js, code, ok := l.connect(c)
	if !ok {
		return code
	}
	defer nc.Close()

	t, err := traceOrder(ctx, &http.Client{Timeout: 10 * time.Second}, js, strings.TrimRight(*orderURL, "/"), strings.TrimRight(*invURL, "/"), pos[0])
	if err != nil {
		return l.fail(c, err)
	}
	if t.TraceID != "" {
		t.GrafanaURL = grafanaTraceURL(strings.TrimRight(*grafana, "/"), t.TraceID)
	}
	if *asJSON {
		if code := l.writeJSON(c, t); code != exitOK {
			return code
		}
	} else {
		printTrace(c.stdout, t)
	}
	if t.StuckAt != "" {
		return exitFailed
	}
	return exitOK
}

func envOr(c *cli, name, def string) string {
	if v := c.getenv(name); v != "" {
		return v
	}
	return def
}

// traceOrder asks every hop about the order and builds its timeline.
func traceOrder(ctx context.Context, hc *http.Client, js jetstream.JetStream, orderURL, invURL, id string) (orderTrace, error) {
	var o orderView
	if err := getJSON(ctx, hc, orderURL+"/v1/orders/"+id, &o); err != nil {
		return orderTrace{}, fmt.Errorf("order service: %w", err)
	}
	t := orderTrace{OrderID: o.ID, Status: o.Status, Reason: o.Reason, TraceID: o.TraceID}
	add := func(s step) { t.Timeline = append(t.Timeline, s) }
	add(step{Time: o.CreatedAt, Hop: hopAPI, Outcome: "accepted", TraceID: o.TraceID})

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
		add(step{Time: placed.WrittenAt, Hop: hopOrderOutbox, Outcome: "written", Reason: placed.LastError,
			Detail: fmt.Sprintf("event %s not published yet (%d attempts)", placed.EventID, placed.Attempts)})
	default:
		add(step{Time: *placed.SentAt, Hop: hopOrderOutbox, Outcome: "published", Detail: "event " + placed.EventID})
		if placed.StreamSeq != nil {
			add(streamStep(ctx, js, events.StreamOrders, hopOrdersStream, uint64(*placed.StreamSeq)))
		}
	}

	var rs struct {
		Reservations []reservationView `json:"reservations"`
	}
	invErr := getJSON(ctx, hc, invURL+"/v1/reservations?order_id="+url.QueryEscape(id), &rs)
	if invErr != nil {
		// An unreachable inventory service is itself a finding, not a reason to stop.
		add(step{Time: time.Now(), Hop: hopInventory, Outcome: "unreachable", Detail: invErr.Error()})
	}
	for _, r := range rs.Reservations {
		add(step{Time: r.DecidedAt, Hop: hopInventory, Outcome: r.Outcome, Reason: r.Reason, TraceID: r.TraceID, Detail: "event " + r.EventID})
		if e := r.Result; e != nil && e.Subject != "" {
			if e.SentAt == nil {
				add(step{Time: e.WrittenAt, Hop: hopInvOutbox, Outcome: "written", Reason: e.LastError,
					Detail: fmt.Sprintf("%s %s not published yet (%d attempts)", e.Subject, e.EventID, e.Attempts)})
			} else {
				add(step{Time: *e.SentAt, Hop: hopInvOutbox, Outcome: "published", Detail: e.Subject + " " + e.EventID})
				if e.StreamSeq != nil {
					add(streamStep(ctx, js, events.StreamInventory, hopResultsStream, uint64(*e.StreamSeq)))
				}
			}
		}
	}
	for _, h := range o.History {
		switch h.Status {
		case "pending":
		case "failed": // written by the watcher of the dead letters, not by a result event
			add(step{Time: h.At, Hop: hopFailer, Outcome: h.Status, Reason: h.Reason})
		default:
			add(step{Time: h.At, Hop: hopSettlement, Outcome: h.Status, Reason: h.Reason, Detail: eventDetail(h.EventID)})
		}
	}
	letters, err := deadletter.List(ctx, js, 0)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return t, fmt.Errorf("dead letters: %w", err)
	}
	for _, lt := range letters {
		if describe(lt).Key == id {
			add(step{Time: lt.Time, Hop: hopDeadLetters, Outcome: lt.Outcome, Reason: lt.Reason,
				Detail: fmt.Sprintf("letter %d from consumer %s after %d deliveries", lt.Seq, lt.Consumer, lt.Deliveries)})
		}
	}
	sort.SliceStable(t.Timeline, func(i, j int) bool { return t.Timeline[i].Time.Before(t.Timeline[j].Time) })

	if o.Status == "pending" {
		t.StuckAt, t.StuckWhy = stuckAt(placed, rs.Reservations)
		if invErr != nil && t.StuckAt == hopInventory {
			t.StuckWhy = "the event is in the ORDERS stream and the inventory service does not answer: " + invErr.Error()
		}
	}
	return t, nil
}

// stuckAt names the first hop a pending order has not passed, and why it thinks so.
func stuckAt(placed *outbox.Entry, rs []reservationView) (string, string) {
	switch {
	case placed == nil:
		return hopOrderOutbox, "the order's event is not in the order outbox"
	case placed.SentAt == nil:
		return hopOrderOutbox, "the order's event is written but not published: is the order service's relay running, and NATS reachable?"
	case len(rs) == 0:
		return hopInventory, "the event is in the ORDERS stream but inventory has no decision for it: is the inventory consumer running (and not skipping)?"
	}
	last := rs[len(rs)-1]
	switch {
	case last.Result == nil || last.Result.Subject == "":
		return hopInvOutbox, "inventory decided but its result event is not in its outbox"
	case last.Result.SentAt == nil:
		return hopInvOutbox, "inventory's result event is written but not published: is the inventory relay running?"
	default:
		return hopSettlement, "the result is in the INVENTORY stream but the order is not settled: is the order service's settlement consumer running?"
	}
}

// streamStep reads a message back from its stream, proving the broker has it.
func streamStep(ctx context.Context, js jetstream.JetStream, stream, hop string, seq uint64) step {
	s, err := js.Stream(ctx, stream)
	if err == nil {
		var m *jetstream.RawStreamMsg
		if m, err = s.GetMsg(ctx, seq); err == nil {
			return step{Time: m.Time, Hop: hop, Outcome: "stored", Detail: fmt.Sprintf("%s seq %d", m.Subject, seq)}
		}
	}
	return step{Hop: hop, Outcome: "unknown", Detail: fmt.Sprintf("seq %d: %v", seq, err)}
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

// grafanaTraceURL opens the trace in Grafana's Explore on the provisioned Tempo datasource.
func grafanaTraceURL(base, traceID string) string {
	panes := fmt.Sprintf(`{"t":{"datasource":"tempo","queries":[{"refId":"A","datasource":{"type":"tempo","uid":"tempo"},"queryType":"traceql","query":%q}],"range":{"from":"now-24h","to":"now"}}}`, traceID)
	return base + "/explore?schemaVersion=1&orgId=1&panes=" + url.QueryEscape(panes)
}

func printTrace(w io.Writer, t orderTrace) {
	fmt.Fprintf(w, "order %s: %s", t.OrderID, t.Status)
	if t.Reason != "" {
		fmt.Fprintf(w, " (%s)", t.Reason)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tHOP\tOUTCOME\tREASON\tTRACE\tDETAIL")
	for _, s := range t.Timeline {
		ts := "-"
		if !s.Time.IsZero() {
			ts = s.Time.UTC().Format("15:04:05.000")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ts, s.Hop, s.Outcome, cell(s.Reason, 40), cell(s.TraceID, 32), cell(s.Detail, 80))
	}
	tw.Flush()
	if t.StuckAt != "" {
		fmt.Fprintf(w, "\nSTUCK at %s: %s\n", t.StuckAt, t.StuckWhy)
	}
	if t.GrafanaURL != "" {
		fmt.Fprintf(w, "\ntrace: %s\n", t.GrafanaURL)
	}
}

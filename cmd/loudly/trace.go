package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"loudly/internal/ordertrace"
)

// runTrace wires package ordertrace to the services' APIs and the broker, and prints what
// it finds.
func runTrace(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Follows one order through every hop, each asked through its own interface: the order\n"+
		"service's API (the order, its status history and its outbox), the ORDERS stream, the\n"+
		"inventory service's API (its decision and result event), the INVENTORY stream, the\n"+
		"settlement and the dead letters. Prints a timeline and a link to the trace in Grafana\n"+
		"(-grafana, $GRAFANA_URL, else the compose demo's); against the running `loudly demo`,\n"+
		"which keeps no traces, where its logs are instead. When the order is not final it names\n"+
		"the hop it is stuck at and exits 1.")
	orderDef, invDef := "http://127.0.0.1:8080", "http://127.0.0.1:8081"
	running, isDemo := c.running()
	if isDemo {
		orderDef, invDef = running.OrderURL, running.InventoryURL
	}
	orderURL := l.fs.String("order-url", envOr(c, "ORDER_URL", orderDef), "order service base `URL` ($ORDER_URL, else the running demo's)")
	invURL := l.fs.String("inventory-url", envOr(c, "INVENTORY_URL", invDef), "inventory service base `URL` ($INVENTORY_URL, else the running demo's)")
	grafana := l.fs.String("grafana", c.getenv("GRAFANA_URL"), "Grafana base `URL` for the trace link ($GRAFANA_URL; default the compose demo's "+composeGrafana+", none against `loudly demo`)")
	asJSON := l.fs.Bool("json", false, "print one JSON document")
	pos, err := l.parseArgs(args, 1, 1)
	if err != nil {
		return err
	}
	if _, err := uuid.Parse(pos[0]); err != nil {
		return l.usagef("ORDER_ID %q is not a UUID", pos[0])
	}
	nc, js, err := l.connect(c)
	if err != nil {
		return err
	}
	defer nc.Close()

	t, err := ordertrace.Follow(ctx, ordertrace.Sources{
		HTTP: &http.Client{Timeout: 10 * time.Second}, JetStream: js, OrderURL: *orderURL, InventoryURL: *invURL,
	}, pos[0])
	if err != nil {
		return err
	}
	// A link only where it opens something: the Grafana named, else the compose demo's —
	// unless the services are the running `loudly demo`'s, which has no Grafana or Tempo.
	demoOnly := isDemo && *orderURL == running.OrderURL && *grafana == ""
	if t.TraceID != "" && !demoOnly {
		t.GrafanaURL = ordertrace.GrafanaURL(cmp.Or(*grafana, composeGrafana), t.TraceID)
	}
	if t.TraceID != "" && demoOnly && running.LogDir != "" {
		t.Logs = fmt.Sprintf("the demo keeps no traces; its services' log lines carry the trace id: grep %s %s", t.TraceID, filepath.Join(running.LogDir, "*.log"))
	}
	if *asJSON {
		if err := c.writeJSON(t); err != nil {
			return err
		}
	} else {
		printTrace(c.stdout, t)
	}
	if t.StuckAt != "" {
		return fmt.Errorf("order %s is stuck at %s", t.OrderID, t.StuckAt)
	}
	return nil
}

// composeGrafana is the compose demo's Grafana, on the host.
const composeGrafana = "http://localhost:3000"

func envOr(c *cli, name, def string) string {
	if v := c.getenv(name); v != "" {
		return v
	}
	return def
}

func printTrace(w io.Writer, t ordertrace.Order) {
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
	if t.Logs != "" {
		fmt.Fprintf(w, "\ntrace %s: %s\n", t.TraceID, t.Logs)
	}
}

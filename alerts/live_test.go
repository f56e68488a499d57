package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"loudly/internal/testenv"
	"loudly/services/events"
	"loudly/services/inventory/inventory"
	"loudly/services/order/order"
)

// The real services under load, scraped by a real Prometheus that evaluates the rules:
// every query of both dashboards and every alert expression is valid PromQL, every panel
// has data (but the two that show failures this test does not cause), and when the
// inventory service stops while orders keep coming, LoudlyThroughputDivergence and
// LoudlyUnsettledOrders fire.
//
// Prometheus loads the rules rendered with the Fast profile (every window and "for"
// divided by 30, thresholds unchanged) so they fire within seconds; the committed
// production rules are the same definitions, and their expressions are checked here too.
func TestLive_DashboardsAndAlertsAgainstRealServicesAndPrometheus(t *testing.T) {
	start := time.Now()
	dsn, natsURL := testenv.Postgres(t), testenv.NATS(t)
	env := map[string]string{
		"DATABASE_URL": dsn, "NATS_URL": natsURL, "HTTP_ADDR": "127.0.0.1:0",
		"RECONCILE_INTERVAL": "1s", "SETTLEMENT_DEADLINE": "5s", "SHUTDOWN_TIMEOUT": "5s",
	}
	// Both services run exactly as their mains run them (testenv.StartProgram).
	inv := testenv.StartProgram(t, inventory.Program("test"), env)
	stopInventory := inv.Stop
	svc := testenv.StartProgram(t, order.Program("test"), env)

	prom := fastPrometheus(t, svc.Addr, inv.Addr)
	prom.WaitTargetsUp(t, 15*time.Second)
	checkRulesLoaded(t, prom, len(Rules(Fast)))

	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	var accepted atomic.Int64
	go load(ctx, "http://"+svc.Addr, 30, &accepted)
	// A few events nobody can process, so the dead-letter and invalid panels have data.
	publishPoison(t, natsURL, 3)

	testenv.WaitFor(t, 30*time.Second, "20s of load, and orders settled", func() bool {
		time.Sleep(time.Second)
		return time.Since(start) > 20*time.Second && query(t, prom, `loudly_orders_settled_total`) > 0 &&
			query(t, prom, `loudly_deadletter_messages`) > 0
	})
	t.Logf("%s: %d orders accepted; checking every query", time.Since(start).Round(time.Second), accepted.Load())

	// Every PromQL of every panel is valid, and has data under load — but for the panels
	// of failures this test does not cause.
	quietPanels := map[string]bool{"Telemetry dropped": true, "Active drill faults": true}
	var checked int
	for _, file := range []string{"business-throughput.json", "consumer-internals.json"} {
		for _, q := range panelQueries(t, "../dashboards/"+file) {
			expr := strings.ReplaceAll(q.expr, "$__rate_interval", "15s")
			res, err := instant(prom, expr)
			checked++
			switch {
			case err != nil:
				t.Errorf("%s, panel %q: %v\n%s", file, q.panel, err, expr)
			case res == 0 && !quietPanels[q.panel]:
				t.Errorf("%s, panel %q: no data under load for\n%s", file, q.panel, expr)
			}
		}
	}
	// Every expression of the committed rule files is valid PromQL.
	for _, r := range Rules(Production) {
		checked++
		if _, err := instant(prom, r.Expr()); err != nil {
			t.Errorf("%s: %v\n%s", r.Name, err, r.Expr())
		}
	}
	t.Logf("%s: %d panel and rule expressions checked", time.Since(start).Round(time.Second), checked)
	for _, name := range []string{"LoudlyThroughputDivergence", "LoudlyUnsettledOrders"} {
		if s := alertState(t, prom, name); s == "firing" {
			t.Errorf("%s fires on healthy traffic", name)
		}
	}

	// The failure: inventory goes away, orders keep coming.
	stopInventory()
	stopped := time.Now()
	t.Logf("%s: inventory stopped", time.Since(start).Round(time.Second))
	testenv.WaitFor(t, 45*time.Second, "LoudlyThroughputDivergence and LoudlyUnsettledOrders firing", func() bool {
		time.Sleep(250 * time.Millisecond)
		return alertState(t, prom, "LoudlyThroughputDivergence") == "firing" &&
			alertState(t, prom, "LoudlyUnsettledOrders") == "firing"
	})
	t.Logf("%s: both firing %s after the inventory stopped; %d orders accepted",
		time.Since(start).Round(time.Second), time.Since(stopped).Round(time.Second), accepted.Load())
	for _, a := range prom.Alerts(t) {
		if a.Labels["alertname"] == "LoudlyUnsettledOrders" && (a.Labels["job"] != "order" || !strings.Contains(string(a.Annotations["description"]), "orders have been pending")) {
			t.Errorf("LoudlyUnsettledOrders: labels %v, annotations %v", a.Labels, a.Annotations)
		}
	}
}

// load posts orders at rate per second until ctx ends; one in ten asks for an unknown SKU.
func load(ctx context.Context, base string, rate int, accepted *atomic.Int64) {
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		sku := "BOOK-001"
		if n%10 == 0 {
			sku = "NOPE-1"
		}
		body := fmt.Sprintf(`{"customer_id":"c","lines":[{"sku":%q,"quantity":1}]}`, sku)
		req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/orders", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusAccepted {
			accepted.Add(1)
		}
	}
}

// publishPoison publishes n malformed order.placed events straight to the stream.
func publishPoison(t *testing.T, natsURL string, n int) {
	js := testenv.JetStream(t, natsURL)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.Publish(ctx, events.SubjectOrderPlaced, []byte(`{"id":"poison","type":"order.placed","version":1,"order_id":`),
			jetstream.WithMsgID("poison-"+uuid.NewString()))
		cancel()
		if err != nil {
			t.Fatalf("publish poison: %v", err)
		}
	}
}

type panelQuery struct{ panel, expr string }

// panelQueries reads the Prometheus queries of a committed dashboard.
func panelQueries(t *testing.T, file string) []panelQuery {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct {
				Expr       string
				Datasource struct{ UID string }
			}
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var out []panelQuery
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			if q.Datasource.UID == "prometheus" {
				out = append(out, panelQuery{p.Title, q.Expr})
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no Prometheus query", file)
	}
	return out
}

// instant runs an instant query and returns how many results it has (a scalar or a
// string is one), or Prometheus's error.
func instant(p *testenv.Prometheus, q string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, _, err := p.API().Query(ctx, q, time.Time{})
	if err != nil {
		return 0, err
	}
	switch v := v.(type) {
	case model.Vector:
		return len(v), nil
	case model.Matrix:
		return len(v), nil
	}
	return 1, nil
}

func query(t *testing.T, p *testenv.Prometheus, q string) int {
	t.Helper()
	n, err := instant(p, q)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// alertState is the most advanced state of an alert in Prometheus: firing, pending or "".
func alertState(t *testing.T, p *testenv.Prometheus, name string) string {
	state := ""
	for _, a := range p.Alerts(t) {
		if string(a.Labels["alertname"]) == name && (a.State == promv1.AlertStateFiring || state == "") {
			state = string(a.State)
		}
	}
	return state
}

// checkRulesLoaded fails unless Prometheus loaded n alerting rules, all healthy.
func checkRulesLoaded(t *testing.T, p *testenv.Prometheus, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.API().Rules(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var loaded int
	for _, g := range res.Groups {
		for _, r := range g.Rules {
			a, ok := r.(promv1.AlertingRule)
			if !ok {
				continue
			}
			loaded++
			if a.Health == promv1.RuleHealthBad {
				t.Errorf("rule %s: %s", a.Name, a.LastError)
			}
		}
	}
	if loaded != n {
		t.Fatalf("Prometheus loaded %d alerting rules, want %d", loaded, n)
	}
}

// fastPrometheus starts a real Prometheus that scrapes both services with the jobs of
// deploy/compose's scrape configuration (on loopback) and evaluates the Fast rules.
func fastPrometheus(t *testing.T, orderAddr, inventoryAddr string) *testenv.Prometheus {
	t.Helper()
	rules := filepath.Join(t.TempDir(), "loudly-fast-rules.yaml")
	fast, err := PrometheusRules(Rules(Fast))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rules, fast, 0o644); err != nil {
		t.Fatal(err)
	}
	return testenv.StartPrometheus(t, testenv.PrometheusConfig{
		Targets:   map[string][]string{"order": {orderAddr}, "inventory": {inventoryAddr}},
		RuleFiles: []string{rules},
	})
}

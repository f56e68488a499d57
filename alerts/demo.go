package alerts

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	demoload "loudly/loadtest/load"
)

// The drill guides (docs/drills) tell a trainee which alerts fire and which stay quiet.
// A trainee runs them on `make demo` or the compose demo: both send load.DemoRate orders/s
// with load.DemoPoison poison events per order, settle orders with a one-minute
// SETTLEMENT_DEADLINE, and start with a Prometheus that has no history. DemoClaims are
// those promises as promtool tests, on series shaped like that load, so a change to the
// demo's load or to a rule that breaks a guide fails the build.

// Claim is one situation of the demo and what the guides promise about it.
type Claim struct {
	Name   string
	Series []Series
	Checks []Check
}

// Check is what must hold at one time of a claim.
type Check struct {
	At     time.Duration
	Firing []string // alerts that must be firing
	Quiet  []string // alerts that must not be firing
}

// Alert names the claims use.
const (
	alertUnsettled   = "LoudlyUnsettledOrders"
	alertDivergence  = "LoudlyThroughputDivergence"
	alertDeadLetters = "LoudlyDeadLettersArriving"
	alertInvalid     = "LoudlyInvalidRateHigh"
	alertFastBurn    = "LoudlyOrderSLOFastBurn"
	alertSlowBurn    = "LoudlyOrderSLOSlowBurn"
)

// DemoClaims are the guides' promises at the demo's load (rate orders/s, poison events
// per order), for the rules rules:
//
//   - the baseline: no drill, from a fresh start. Letters arrive (LoudlyDeadLettersArriving
//     fires, as every guide says it already does) and nothing else fires: not
//     LoudlyInvalidRateHigh, which silent-skip's guide says must stay quiet;
//   - silent-skip at its default 0.2 on a fresh demo: LoudlyUnsettledOrders, then
//     LoudlyThroughputDivergence; LoudlyInvalidRateHigh stays quiet, and the SLO burn
//     alerts wait for the history their long windows need;
//   - silent-skip left on, after an hour of history: LoudlyOrderSLOFastBurn about 25
//     minutes in, as the guide says, not 20.
func DemoClaims(rules []Rule, rate, poison float64) []Claim {
	all := Names(rules)
	except := func(names ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(n string) bool { return slices.Contains(names, n) })
	}
	const skip = 0.2
	return []Claim{
		{
			Name:   fmt.Sprintf("the demo's baseline (%g orders/s, %g poison events per order), from a fresh start: only LoudlyDeadLettersArriving fires", rate, poison),
			Series: demoTraffic(130, rate, poison, -1, 0),
			Checks: []Check{
				{At: 15 * time.Minute, Firing: []string{alertDeadLetters}, Quiet: except(alertDeadLetters)},
				{At: time.Hour, Firing: []string{alertDeadLetters}, Quiet: except(alertDeadLetters)},
				{At: 2 * time.Hour, Firing: []string{alertDeadLetters}, Quiet: except(alertDeadLetters)},
			},
		},
		{
			Name:   "silent-skip 0.2 on a fresh demo (from minute 5): the reconciler's alerts fire, LoudlyInvalidRateHigh and the SLO burns stay quiet",
			Series: demoTraffic(60, rate, poison, 5, skip),
			Checks: []Check{
				{At: 12 * time.Minute, Firing: []string{alertUnsettled}, Quiet: []string{alertInvalid, alertFastBurn, alertSlowBurn}},
				{At: 20 * time.Minute, Firing: []string{alertUnsettled, alertDivergence, alertDeadLetters}, Quiet: []string{alertInvalid, alertFastBurn, alertSlowBurn}},
				{At: 50 * time.Minute, Firing: []string{alertUnsettled, alertDivergence}, Quiet: []string{alertInvalid, alertFastBurn, alertSlowBurn}},
			},
		},
		{
			Name:   "silent-skip 0.2 left on after an hour of history: LoudlyOrderSLOFastBurn about 25 minutes in",
			Series: demoTraffic(100, rate, poison, 60, skip),
			Checks: []Check{
				{At: 80 * time.Minute, Firing: []string{alertUnsettled, alertDivergence}, Quiet: []string{alertInvalid, alertFastBurn}},
				{At: 88 * time.Minute, Firing: []string{alertFastBurn, alertUnsettled, alertDivergence}, Quiet: []string{alertInvalid}},
			},
		},
	}
}

// demoTraffic is minutes+1 samples a minute apart of the demo's series at rate orders/s
// and poison events per order: 95% of orders confirmed and 5% rejected, poison
// dead-lettered by inventory. From minute skipFrom on (none when negative) the inventory
// consumer skips a skip fraction of orders silently: it records them as applied, they
// never settle, and the reconciler counts them once they are a minute (the demo's
// SETTLEMENT_DEADLINE) old.
func demoTraffic(minutes int, rate, poison float64, skipFrom int, skip float64) []Series {
	orders := rate * 60 // a minute's
	letters := orders * poison
	settled := func(t int) float64 {
		if skipFrom < 0 || t <= skipFrom {
			return orders * float64(t)
		}
		return orders*float64(skipFrom) + orders*(1-skip)*float64(t-skipFrom)
	}
	unsettled := func(t int) float64 {
		if skipFrom < 0 || t <= skipFrom+1 {
			return 0
		}
		return orders * skip * float64(t-skipFrom-1)
	}
	series := func(sel string, f func(t int) float64) Series {
		v := make([]float64, minutes+1)
		for t := range v {
			v[t] = f(t)
		}
		return Series{sel, promValues(v)}
	}
	linear := func(per float64) func(int) float64 { return func(t int) float64 { return per * float64(t) } }
	zero := func(int) float64 { return 0 }
	const (
		order = `job="order", instance="order:8080"`
		inv   = `job="inventory", instance="inventory:8081"`
	)
	out := []Series{
		series(`loudly_orders_accepted_total{`+order+`}`, linear(orders)),
		series(`loudly_orders_settled_total{`+order+`, status="confirmed"}`, func(t int) float64 { return 0.95 * settled(t) }),
		series(`loudly_orders_settled_total{`+order+`, status="rejected"}`, func(t int) float64 { return 0.05 * settled(t) }),
		series(`loudly_orders_settled_total{`+order+`, status="failed"}`, zero),
		series(`loudly_orders_unsettled{`+order+`}`, unsettled),
		series(`loudly_deadletter_messages{`+order+`, consumer="inventory"}`, linear(letters)),
		series(`loudly_decisions_total{`+order+`, stage="http", outcome="applied", reason="order_accepted", event_type="POST /v1/orders"}`, linear(orders)),
		// A skipped order is recorded as applied: the consumer's own signals stay green.
		series(`loudly_decisions_total{`+inv+`, stage="consume", outcome="applied", reason="reserved", event_type="order.placed"}`, linear(0.95*orders)),
		series(`loudly_decisions_total{`+inv+`, stage="consume", outcome="rejected", reason="unknown_sku", event_type="order.placed"}`, linear(0.05*orders)),
		series(`loudly_decisions_total{`+inv+`, stage="consume", outcome="invalid", reason="malformed", event_type="orders.placed"}`, linear(letters)),
		series(`loudly_decisions_total{`+order+`, stage="consume", outcome="applied", reason="order_confirmed", event_type="inventory.reserved"}`, func(t int) float64 { return 0.95 * settled(t) }),
		series(`loudly_decisions_total{`+order+`, stage="consume", outcome="applied", reason="order_rejected", event_type="inventory.rejected"}`, func(t int) float64 { return 0.05 * settled(t) }),
		series(`loudly_decisions_total{`+order+`, stage="consume", outcome="applied", reason="letter_recorded", event_type="deadletter.inventory"}`, linear(letters)),
		series(`loudly_consumer_pending{`+inv+`, consumer="inventory", stream="ORDERS"}`, zero),
		series(`loudly_consumer_acknowledged_total{`+inv+`, consumer="inventory", stream="ORDERS"}`, linear(orders+letters)),
		series(`loudly_consumer_delivered_total{`+inv+`, consumer="inventory", stream="ORDERS"}`, linear(orders+letters)),
		series(`loudly_consumer_pending{`+order+`, consumer="order-settlement", stream="INVENTORY"}`, zero),
		series(`loudly_consumer_acknowledged_total{`+order+`, consumer="order-settlement", stream="INVENTORY"}`, settled),
		series(`loudly_consumer_delivered_total{`+order+`, consumer="order-settlement", stream="INVENTORY"}`, settled),
		series(`loudly_consumer_pending{`+order+`, consumer="order-deadletters", stream="DEADLETTER"}`, zero),
		series(`loudly_consumer_acknowledged_total{`+order+`, consumer="order-deadletters", stream="DEADLETTER"}`, linear(letters)),
		series(`loudly_consumer_delivered_total{`+order+`, consumer="order-deadletters", stream="DEADLETTER"}`, linear(letters)),
		series(`loudly_outbox_backlog{`+order+`, table="orders.outbox"}`, zero),
		series(`loudly_outbox_oldest_age_seconds{`+order+`, table="orders.outbox"}`, zero),
		series(`loudly_outbox_backlog{`+inv+`, table="inventory.outbox"}`, zero),
		series(`loudly_outbox_oldest_age_seconds{`+inv+`, table="inventory.outbox"}`, zero),
		series(`loudly_telemetry_spans_dropped_total{`+order+`, reason="queue_full"}`, zero),
		series(`loudly_telemetry_log_dropped_total{`+order+`, sink="loki"}`, zero),
	}
	return append(out, servicesUp(fmt.Sprintf("1x%d", minutes))...)
}

// promValues writes samples in promtool's notation, each run of a constant step as one
// "start+stepxN" (N steps after start).
func promValues(v []float64) string {
	var parts []string
	for i := 0; i < len(v); {
		j := i + 1
		if j < len(v) {
			step := v[j] - v[i]
			for j+1 < len(v) && math.Abs(v[j+1]-v[j]-step) < 1e-9 {
				j++
			}
			parts = append(parts, num(v[i])+"+"+num(step)+"x"+strconv.Itoa(j-i))
			i = j + 1
			continue
		}
		parts = append(parts, num(v[i]))
		i = j
	}
	return strings.Join(parts, " ")
}

// claimTests renders the claims as promtool test groups: a quiet alert is an
// alert_rule_test expecting none; a firing one is a query of the ALERTS series, so the
// test need not know the alert's exact value.
func claimTests(claims []Claim) []testGroup {
	var out []testGroup
	for _, c := range claims {
		g := testGroup{Name: "demo claim: " + c.Name, Interval: "1m"}
		for _, s := range c.Series {
			g.InputSeries = append(g.InputSeries, testInput{s.Selector, s.Values})
		}
		for _, ch := range c.Checks {
			for _, q := range ch.Quiet {
				g.AlertRuleTests = append(g.AlertRuleTests, alertTest{EvalTime: promDuration(ch.At), Alertname: q, ExpAlerts: []expAlert{}})
			}
			for _, f := range ch.Firing {
				g.PromqlExprTests = append(g.PromqlExprTests, promqlTest{
					Expr:       fmt.Sprintf(`count by (alertname) (ALERTS{alertname=%q, alertstate="firing"})`, f),
					EvalTime:   promDuration(ch.At),
					ExpSamples: []expSample{{Labels: fmt.Sprintf(`{alertname=%q}`, f), Value: 1}},
				})
			}
		}
		out = append(out, g)
	}
	return out
}

// demoClaims are the claims the committed promtool tests check: the production rules at
// the demo's load.
func demoClaims(rules []Rule) []Claim {
	return DemoClaims(rules, demoload.DemoRate, demoload.DemoPoison)
}

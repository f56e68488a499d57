package alerts

import (
	"fmt"
	"time"

	"loudly/dashboards"
	"loudly/services"
)

// Rules returns every Loudly alert with the time constants of profile p.
//
// Thresholds are set for the demo's steady load (about 20 orders/s) and hold for a test
// burst (50/s for 30–60s): every rule compares ratios or ages, not raw rates, so the
// volume of traffic only matters where a rule says so (NoOrders, RejectionRateHigh).
//
// Consumer, outbox and dead-letter gauges describe shared state (the broker's view of a
// consumer, an outbox table, the DEADLETTER stream) that every replica reports alike, so
// they are aggregated with max; counters are summed.
func Rules(p Profile) []Rule {
	w := p.w
	m := func(d time.Duration) time.Duration { return p.dur(d) }
	rules := []Rule{
		{
			Name: "LoudlyThroughputDivergence", Group: "loudly-business", Severity: Critical,
			Value: fmt.Sprintf(`1 - (sum(rate(loudly_orders_settled_total[%[1]s])) or vector(0)) / sum(rate(loudly_orders_accepted_total[%[1]s]))`, w(5*time.Minute)),
			Op:    ">", Threshold: 0.1, For: m(5 * time.Minute),
			Summary: "Orders are accepted but not settled",
			Description: fmt.Sprintf("Over the last %s, settlements fell {{ $value | humanizePercentage }} short of the orders accepted (threshold 10%%). "+
				"Orders go in through the API and do not come out confirmed, rejected or failed: the outbox relay, the inventory consumer, "+
				"its result events or the settlement consumer is down, slow or skipping work.", w(5*time.Minute)),
			Dashboard: dashboards.BusinessUID, Panel: dashboards.PanelAcceptedVsSettled,
			Fires: Scenario{
				Series: []Series{
					{`loudly_orders_accepted_total{job="order", instance="order:8080"}`, "0+1200x60"},
					{`loudly_orders_settled_total{job="order", instance="order:8080", status="confirmed"}`, "0+1200x20 24000+0x40"},
				},
				At: 35 * time.Minute, Value: "100%",
			},
		},
		{
			Name: "LoudlyUnsettledOrders", Group: "loudly-business", Severity: Critical,
			Value: `max by (job) (loudly_orders_unsettled)`,
			Op:    ">", Threshold: 0, For: m(2 * time.Minute),
			Summary: "Orders pending past the settlement deadline",
			Description: "{{ $value | humanize }} orders have been pending longer than the settlement deadline (SETTLEMENT_DEADLINE) for " + promDuration(m(2*time.Minute)) + ". " +
				"The reconciler of {{ $labels.job }} counts what the business expected and did not get, so this fires even when a consumer acks events it never applied " +
				"and every consumer metric is green.",
			Dashboard: dashboards.BusinessUID, Panel: dashboards.PanelUnsettled,
			Fires: Scenario{
				Series: []Series{{`loudly_orders_unsettled{job="order", instance="order:8080"}`, "0x10 5x20"}},
				At:     20 * time.Minute, Labels: map[string]string{"job": "order"}, Value: "5",
			},
		},
		{
			// The dead-letter gauge of a consumer appears with its first letter; a
			// consumer with no series a window ago counts from zero, so the first letter
			// fires too.
			Name: "LoudlyDeadLettersArriving", Group: "loudly-business", Severity: Warning,
			Value: fmt.Sprintf(`max by (consumer) (loudly_deadletter_messages) - (max by (consumer) (loudly_deadletter_messages offset %s) or max by (consumer) (loudly_deadletter_messages) * 0)`, w(10*time.Minute)),
			Op:    ">", Threshold: 0, For: m(time.Minute),
			Summary: "Dead letters arriving from consumer {{ $labels.consumer }}",
			Description: fmt.Sprintf("{{ $value | humanize }} new dead letters from consumer {{ $labels.consumer }} in the last %s. "+
				"Each is a message Loudly gave up on (invalid, or retries exhausted), kept in the DEADLETTER stream with its reason; "+
				"an order whose order.placed event was dead-lettered is marked failed.", w(10*time.Minute)),
			Dashboard: dashboards.BusinessUID, Panel: dashboards.PanelDeadLetters,
			Fires: Scenario{
				Series: []Series{
					{`loudly_deadletter_messages{job="order", instance="order:8080", consumer="inventory"}`, "_x10 1+1x10 11x20"},
					{`loudly_deadletter_messages{job="order", instance="order:8080", consumer="order-settlement"}`, "4x31"},
				},
				At: 20 * time.Minute, Labels: map[string]string{"consumer": "inventory"}, Value: "10",
				ResolvedAt: 35 * time.Minute,
			},
		},
		{
			// Only consume-stage decisions: an HTTP request rejected by validation is a
			// client's mistake, answered with a 400, and is no event lost.
			Name: "LoudlyInvalidRateHigh", Group: "loudly-business", Severity: Warning,
			Value: fmt.Sprintf(`sum by (job) (rate(loudly_decisions_total{stage="consume", outcome="invalid"}[%[1]s])) / sum by (job) (rate(loudly_decisions_total{stage="consume"}[%[1]s]))`, w(5*time.Minute)),
			Op:    ">", Threshold: 0.01, For: m(2 * time.Minute),
			Summary: "{{ $labels.job }} receives events it can never process",
			Description: fmt.Sprintf("{{ $value | humanizePercentage }} of the messages {{ $labels.job }} consumed in the last %s were invalid (threshold 1%%): "+
				"malformed, an unknown version, missing fields. They are dead-lettered, not dropped; a producer emits what the consumer's contract does not accept.", w(5*time.Minute)),
			Dashboard: dashboards.BusinessUID, Panel: dashboards.PanelInvalid,
			Fires: Scenario{
				Series: []Series{
					{`loudly_decisions_total{job="inventory", instance="inventory:8081", stage="consume", outcome="applied", reason="reserved", event_type="order.placed"}`, "0+1140x30"},
					{`loudly_decisions_total{job="inventory", instance="inventory:8081", stage="consume", outcome="invalid", reason="malformed", event_type="orders.placed"}`, "0+60x30"},
				},
				At: 10 * time.Minute, Labels: map[string]string{"job": "inventory"}, Value: "5%",
			},
		},
		{
			Name: "LoudlyNoOrders", Group: "loudly-business", Severity: Warning,
			Value: fmt.Sprintf(`(sum(increase(loudly_orders_accepted_total[%s])) or vector(0))`, w(10*time.Minute)),
			Op:    "<", Threshold: 1, For: m(5 * time.Minute),
			Also:    fmt.Sprintf(`and on () sum(increase(loudly_orders_accepted_total[%s] offset %s)) > 60`, w(time.Hour), w(10*time.Minute)),
			Summary: "No orders accepted",
			Description: fmt.Sprintf("{{ $value | humanize }} orders were accepted in the last %s, though more than 60 were accepted in the %s before: "+
				"traffic stopped reaching POST /v1/orders, or the order service refuses every request.", w(10*time.Minute), w(time.Hour)),
			Dashboard: dashboards.BusinessUID, Panel: dashboards.PanelAcceptedVsSettled,
			Fires: Scenario{
				Series: []Series{{`loudly_orders_accepted_total{job="order", instance="order:8080"}`, "0+1200x60 72000+0x80"}},
				At:     80 * time.Minute, Value: "0",
				// An hour after the traffic stopped, nothing is expected any more.
				ResolvedAt: 140 * time.Minute,
			},
		},
		{
			Name: "LoudlyRejectionRateHigh", Group: "loudly-business", Severity: Warning,
			Value: fmt.Sprintf(`sum(rate(loudly_orders_settled_total{status="rejected"}[%[1]s])) / sum(rate(loudly_orders_settled_total[%[1]s]))`, w(5*time.Minute)),
			Op:    ">", Threshold: 0.15, For: m(5 * time.Minute),
			Also:    fmt.Sprintf(`and sum(rate(loudly_orders_settled_total[%s])) > 0.1`, w(5*time.Minute)),
			Summary: "Many orders are rejected",
			Description: fmt.Sprintf("{{ $value | humanizePercentage }} of the orders settled in the last %s were rejected (threshold 15%%; the demo's mix rejects about 5%%): "+
				"unknown SKUs or insufficient stock. The pipeline works; the business says no.", w(5*time.Minute)),
			Dashboard: dashboards.BusinessUID, Panel: dashboards.PanelSettledByStatus,
			Fires: Scenario{
				Series: []Series{
					{`loudly_orders_settled_total{job="order", instance="order:8080", status="confirmed"}`, "0+900x30"},
					{`loudly_orders_settled_total{job="order", instance="order:8080", status="rejected"}`, "0+300x30"},
				},
				At: 15 * time.Minute, Value: "25%",
			},
		},
		{
			Name: "LoudlyConsumerStalled", Group: "loudly-pipeline", Severity: Critical,
			Value: `max by (job, consumer, stream) (loudly_consumer_pending)`,
			Op:    ">", Threshold: 0, For: m(5 * time.Minute),
			Also: fmt.Sprintf(`and max by (job, consumer, stream) (min_over_time(loudly_consumer_pending[%[1]s])) > 0
and max by (job, consumer, stream) (delta(loudly_consumer_pending[%[1]s])) > 0
and max by (job, consumer, stream) (rate(loudly_consumer_acknowledged_total[%[1]s]))
  <= 0.5 * max by (job, consumer, stream) (rate(loudly_consumer_delivered_total[%[1]s]))`, w(5*time.Minute)),
			Summary: "Consumer {{ $labels.consumer }} is stalled",
			Description: fmt.Sprintf("{{ $value | humanize }} messages wait in stream {{ $labels.stream }} for consumer {{ $labels.consumer }} ({{ $labels.job }}). "+
				"The backlog never emptied and grew over the last %s while acknowledgements stayed under half of the deliveries: "+
				"the consumer acknowledges nothing, or retries the same messages over and over.", w(5*time.Minute)),
			Dashboard: dashboards.ConsumersUID, Panel: dashboards.PanelPending,
			Fires: Scenario{
				Series: []Series{
					{`loudly_consumer_pending{job="inventory", instance="inventory:8081", consumer="inventory", stream="ORDERS"}`, "0+100x30"},
					{`loudly_consumer_acknowledged_total{job="inventory", instance="inventory:8081", consumer="inventory", stream="ORDERS"}`, "5000x30"},
					{`loudly_consumer_delivered_total{job="inventory", instance="inventory:8081", consumer="inventory", stream="ORDERS"}`, "5000x30"},
					{`loudly_consumer_pending{job="order", instance="order:8080", consumer="order-settlement", stream="INVENTORY"}`, "0x30"},
					{`loudly_consumer_acknowledged_total{job="order", instance="order:8080", consumer="order-settlement", stream="INVENTORY"}`, "0+1200x30"},
					{`loudly_consumer_delivered_total{job="order", instance="order:8080", consumer="order-settlement", stream="INVENTORY"}`, "0+1200x30"},
				},
				At:     15 * time.Minute,
				Labels: map[string]string{"job": "inventory", "consumer": "inventory", "stream": "ORDERS"}, Value: "1.5k",
			},
		},
		{
			Name: "LoudlyOutboxBacklogGrowing", Group: "loudly-pipeline", Severity: Warning,
			Value: `max by (job, table) (loudly_outbox_oldest_age_seconds)`,
			Op:    ">", Threshold: 60, For: m(2 * time.Minute),
			Also:    fmt.Sprintf(`and max by (job, table) (delta(loudly_outbox_backlog[%s])) >= 0`, w(5*time.Minute)),
			Summary: "Outbox {{ $labels.table }} is not being published",
			Description: fmt.Sprintf("The oldest unpublished event in {{ $labels.table }} ({{ $labels.job }}) is {{ $value | humanizeDuration }} old "+
				"and the backlog has not shrunk over the last %s: the relay cannot publish to JetStream, and the events it holds reach no consumer.", w(5*time.Minute)),
			Dashboard: dashboards.ConsumersUID, Panel: dashboards.PanelOutboxAge,
			Fires: Scenario{
				Series: []Series{
					{`loudly_outbox_oldest_age_seconds{job="order", instance="order:8080", table="orders.outbox"}`, "0x5 0+60x25"},
					{`loudly_outbox_backlog{job="order", instance="order:8080", table="orders.outbox"}`, "0x5 0+1200x25"},
					// Old but draining: the relay is catching up, no alert.
					{`loudly_outbox_oldest_age_seconds{job="inventory", instance="inventory:8081", table="inventory.outbox"}`, "600x30"},
					{`loudly_outbox_backlog{job="inventory", instance="inventory:8081", table="inventory.outbox"}`, "3000-100x30"},
				},
				At:     15 * time.Minute,
				Labels: map[string]string{"job": "order", "table": "orders.outbox"}, Value: "9m 0s",
			},
		},
		{
			// retry is a nak, redelivered after a backoff; duplicate is mostly a
			// redelivery of work already applied (an ack that did not arrive in time).
			Name: "LoudlyRedeliveriesHigh", Group: "loudly-pipeline", Severity: Warning,
			Value: fmt.Sprintf(`sum by (job) (rate(loudly_decisions_total{stage="consume", outcome=~"retry|duplicate"}[%[1]s])) / sum by (job) (rate(loudly_decisions_total{stage="consume"}[%[1]s]))`, w(5*time.Minute)),
			Op:    ">", Threshold: 0.05, For: m(5 * time.Minute),
			Summary: "{{ $labels.job }} processes messages more than once",
			Description: fmt.Sprintf("{{ $value | humanizePercentage }} of the consume decisions of {{ $labels.job }} in the last %s were retries or duplicates (threshold 5%%): "+
				"messages come back after a transient failure (retry) or after an acknowledgement that did not arrive within the ack wait (duplicate).", w(5*time.Minute)),
			Dashboard: dashboards.ConsumersUID, Panel: dashboards.PanelConsumeOutcomes,
			Fires: Scenario{
				Series: []Series{
					{`loudly_decisions_total{job="inventory", instance="inventory:8081", stage="consume", outcome="applied", reason="reserved", event_type="order.placed"}`, "0+960x30"},
					{`loudly_decisions_total{job="inventory", instance="inventory:8081", stage="consume", outcome="duplicate", reason="already_applied", event_type="order.placed"}`, "0+240x30"},
				},
				At: 15 * time.Minute, Labels: map[string]string{"job": "inventory"}, Value: "20%",
			},
		},
		{
			// Every wait on PostgreSQL is bounded (DB_TIMEOUT), so a database that stops
			// answering — commits waiting for a synchronous standby that is gone, packets
			// dropped on the way — shows as waits that time out, not as requests that hang.
			Name: "LoudlyDatabaseStalled", Group: "loudly-pipeline", Severity: Critical,
			Value: fmt.Sprintf(`sum by (job) (increase(loudly_db_timeouts_total[%s]))`, w(2*time.Minute)),
			Op:    ">", Threshold: 0, For: m(time.Minute),
			Summary: "{{ $labels.job }} waits on PostgreSQL time out",
			Description: fmt.Sprintf("{{ $value | humanize }} waits of {{ $labels.job }} on PostgreSQL ran past DB_TIMEOUT in the last %s, and they have kept timing out for %s: "+
				"the primary answers no commit (its synchronous standby is gone and synchronous_standby_names still requires one), the network to it drops packets, or it is saturated. "+
				"Order requests are answered 500 (clients retry with their Idempotency-Key) and consumers redeliver; nothing is lost, but nothing gets through.", w(2*time.Minute), promDuration(m(time.Minute))),
			Dashboard: dashboards.ConsumersUID, Panel: dashboards.PanelDBTimeouts,
			Fires: Scenario{
				Series: []Series{
					{`loudly_db_timeouts_total{job="order", instance="order:8080", wait="batch"}`, "0x10 0+20x10 200x15"},
					{`loudly_db_timeouts_total{job="inventory", instance="inventory:8081", wait="query"}`, "0x35"},
				},
				At: 15 * time.Minute, Labels: map[string]string{"job": "order"}, Value: "40",
				// Two minutes after the standby came back, the window holds no timeout.
				ResolvedAt: 30 * time.Minute,
			},
		},
		{
			// Telemetry that never arrives is a silent path of its own: the decisions are
			// still counted (metrics are pulled, not pushed), but an exemplar may open a
			// trace that was never stored and Loki may miss the log line that explains it.
			// The services' drop counters start at zero, so the first drop is an increase.
			Name: "LoudlyTelemetryDropped", Group: "loudly-pipeline", Severity: Warning,
			Value: fmt.Sprintf(`sum by (job, signal) (
  label_replace(increase(loudly_telemetry_spans_dropped_total[%[1]s]), "signal", "spans", "", "")
  or label_replace(increase(loudly_telemetry_log_dropped_total[%[1]s]), "signal", "log lines", "", "")
)`, w(10*time.Minute)),
			Op: ">", Threshold: 0, For: m(5 * time.Minute),
			Summary: "{{ $labels.job }} drops {{ $labels.signal }} instead of exporting them",
			Description: fmt.Sprintf("{{ $labels.job }} dropped {{ $value | humanize }} {{ $labels.signal }} in the last %s, and has kept dropping them for %s: "+
				"the collector or Loki is down, slow or refusing, or more is produced than the exporter can send. "+
				"Every decision is still counted and written to stdout, but exemplars may open traces that were never stored "+
				"and Loki may lack the lines an investigation needs.", w(10*time.Minute), promDuration(m(5*time.Minute))),
			Dashboard: dashboards.ConsumersUID, Panel: dashboards.PanelTelemetryDrops,
			Fires: Scenario{
				Series: []Series{
					{`loudly_telemetry_spans_dropped_total{job="inventory", instance="inventory:8081", reason="export_failed"}`, "0x10 0+512x10 5120x25"},
					{`loudly_telemetry_spans_dropped_total{job="inventory", instance="inventory:8081", reason="queue_full"}`, "0x45"},
					{`loudly_telemetry_log_dropped_total{job="inventory", instance="inventory:8081", sink="loki"}`, "0x45"},
					{`loudly_telemetry_spans_dropped_total{job="order", instance="order:8080", reason="export_failed"}`, "0x45"},
				},
				At: 20 * time.Minute, Labels: map[string]string{"job": "inventory", "signal": "spans"}, Value: "4.608k",
				// Ten minutes after the collector came back, the window holds no drop.
				ResolvedAt: 42 * time.Minute,
			},
		},
		sloBurn(p, "LoudlyOrderSLOFastBurn", Critical, time.Hour, 5*time.Minute, 14.4, 2*time.Minute,
			"2% of the 30-day budget is gone within the hour",
			Scenario{
				Series: []Series{
					{`loudly_orders_accepted_total{job="order", instance="order:8080"}`, "0+1200x140"},
					{`loudly_orders_settled_total{job="order", instance="order:8080", status="confirmed"}`, "0+1200x60 72000+600x80"},
					{`loudly_orders_settled_total{job="order", instance="order:8080", status="failed"}`, "0x60 0+600x80"},
				},
				At: 130 * time.Minute, Value: "100",
			}),
		sloBurn(p, "LoudlyOrderSLOSlowBurn", Warning, 6*time.Hour, 30*time.Minute, 6, 15*time.Minute,
			"5% of the 30-day budget is gone in 6h",
			Scenario{
				Series: []Series{
					{`loudly_orders_accepted_total{job="order", instance="order:8080"}`, "0+1200x480"},
					{`loudly_orders_settled_total{job="order", instance="order:8080", status="confirmed"}`, "0+1140x480"},
					{`loudly_orders_settled_total{job="order", instance="order:8080", status="failed"}`, "0+60x480"},
				},
				// 5% failing burns 10×: a ticket, not a page.
				At: 7 * time.Hour, Value: "10", Quiet: []string{"LoudlyOrderSLOFastBurn"},
			}),
	}
	for _, s := range services.All {
		rules = append(rules, ServiceRules(p, s)...)
	}
	return rules
}

// ServiceDownAlert is the name of the alert that fires when no instance of s answers
// Prometheus's scrape: LoudlyInventoryDown.
func ServiceDownAlert(s services.Service) string { return "Loudly" + s.CamelName() + "Down" }

// ServiceRules are the rules every service of services.All gets, generated from the list
// (group loudly-services), so a service scaffolded by `loudly new service` is covered by
// the next go generate. Each has its own runbook, docs/runbooks/<alert>.md, which the
// scaffold writes as a skeleton for the service's team to complete.
//
// Loudly<Service>Down: no instance of the service answers its scrape. The other rules cannot
// see a dead service: its consumer's gauges are exported by the service itself and vanish
// with it. absent() makes a service that is not scraped at all (a job missing from the
// Prometheus configuration) count as down too.
func ServiceRules(p Profile, s services.Service) []Rule {
	up := fmt.Sprintf(`up{job=%q}`, s.Name)
	return []Rule{{
		Name: ServiceDownAlert(s), Group: "loudly-services", Severity: Critical,
		Value: fmt.Sprintf(`(sum by (job) (%[1]s) or absent(%[1]s) - 1)`, up),
		Op:    "<", Threshold: 1, For: p.dur(2 * time.Minute),
		Summary: "No instance of {{ $labels.job }} is up",
		Description: fmt.Sprintf("{{ $value | humanize }} instances of {{ $labels.job }} answered Prometheus's scrape for %s (a service that is not scraped at all counts as 0): "+
			"it is down, crash-looping or unreachable. Nothing consumes its messages meanwhile; they wait in their stream until it is back.", promDuration(p.dur(2*time.Minute))),
		Dashboard: dashboards.ConsumersUID, Panel: dashboards.ServiceUpPanel(s.Name),
		Fires: Scenario{
			Series: []Series{{fmt.Sprintf(`up{job=%q, instance="%s:%d"}`, s.Name, s.Name, s.Port), "1x10 0x20"}},
			At:     15 * time.Minute, Labels: map[string]string{"job": s.Name}, Value: "0",
		},
	}}
}

// sloBurn is one alert of the multi-window, multi-burn-rate pair on the order-success
// SLO (dashboards.SLOObjective): the error ratio over a long and a short window, both
// divided by the error budget, above factor. The long window makes it significant, the
// short one makes it stop soon after the problem does. It waits until Prometheus has the
// long window's history: until then the other alerts (LoudlyUnsettledOrders,
// LoudlyThroughputDivergence) speak for the same failure.
func sloBurn(p Profile, name, severity string, long, short time.Duration, factor float64, forD time.Duration, meaning string, s Scenario) Rule {
	budget := num(dashboards.SLOErrorBudget)
	return Rule{
		Name: name, Group: "loudly-slo", Severity: severity,
		Value: dashboards.SLOErrorRatio(p.w(long)) + " / " + budget,
		Op:    ">", Threshold: factor, For: p.dur(forD),
		// The long window must be full: Prometheus holds the orders counter from (long -
		// short) ago. A fresh Prometheus (a new demo) has minutes, not an hour: its "1h"
		// ratio is the last few minutes' and would page at once on what a full hour dilutes.
		Also: "and " + dashboards.SLOErrorRatio(p.w(short)) + " / " + budget + " > " + num(factor) +
			"\nand on () count(loudly_orders_accepted_total offset " + p.w(long-short) + ")",
		Summary: "Order success error budget burning at {{ $value | humanize }}×",
		Description: fmt.Sprintf("Accepted orders that fail or never settle use the error budget of the order-success SLO (%s%% settle confirmed or rejected; budget %s%%). "+
			"It burned at {{ $value | humanize }}× over the last %s, and above %s× over the last %s too: %s.",
			num(dashboards.SLOObjective*100), num(dashboards.SLOErrorBudget*100), p.w(long), num(factor), p.w(short), meaning),
		Dashboard: dashboards.BusinessUID, Panel: dashboards.PanelBurnRate,
		Fires: s,
	}
}

// Healthy is a day of healthy traffic at the demo's 20 orders/s, as promtool input: every
// order settles (5% rejected), clients send a good number of bad requests (http-stage
// invalid decisions, which are no lost events), a few messages come twice, consumers
// keep up, outboxes are empty, three old dead letters wait in the stream, and every
// service of services.All is up. No rule may fire on it.
var Healthy = append([]Series{
	{`loudly_orders_accepted_total{job="order", instance="order:8080"}`, "0+1200x430"},
	{`loudly_orders_settled_total{job="order", instance="order:8080", status="confirmed"}`, "0+1140x430"},
	{`loudly_orders_settled_total{job="order", instance="order:8080", status="rejected"}`, "0+60x430"},
	{`loudly_orders_settled_total{job="order", instance="order:8080", status="failed"}`, "0x430"},
	{`loudly_orders_unsettled{job="order", instance="order:8080"}`, "0x430"},
	{`loudly_deadletter_messages{job="order", instance="order:8080", consumer="inventory"}`, "3x430"},
	{`loudly_decisions_total{job="order", instance="order:8080", stage="http", outcome="applied", reason="order_accepted", event_type="POST /v1/orders"}`, "0+1200x430"},
	{`loudly_decisions_total{job="order", instance="order:8080", stage="http", outcome="invalid", reason="missing_field", event_type="POST /v1/orders"}`, "0+600x430"},
	{`loudly_decisions_total{job="inventory", instance="inventory:8081", stage="consume", outcome="applied", reason="reserved", event_type="order.placed"}`, "0+1140x430"},
	{`loudly_decisions_total{job="inventory", instance="inventory:8081", stage="consume", outcome="rejected", reason="unknown_sku", event_type="order.placed"}`, "0+60x430"},
	{`loudly_decisions_total{job="inventory", instance="inventory:8081", stage="consume", outcome="duplicate", reason="already_applied", event_type="order.placed"}`, "0+2x430"},
	{`loudly_decisions_total{job="order", instance="order:8080", stage="consume", outcome="applied", reason="order_confirmed", event_type="inventory.reserved"}`, "0+1140x430"},
	{`loudly_decisions_total{job="order", instance="order:8080", stage="consume", outcome="applied", reason="order_rejected", event_type="inventory.rejected"}`, "0+60x430"},
	{`loudly_consumer_pending{job="inventory", instance="inventory:8081", consumer="inventory", stream="ORDERS"}`, "0x430"},
	{`loudly_consumer_acknowledged_total{job="inventory", instance="inventory:8081", consumer="inventory", stream="ORDERS"}`, "0+1202x430"},
	{`loudly_consumer_delivered_total{job="inventory", instance="inventory:8081", consumer="inventory", stream="ORDERS"}`, "0+1202x430"},
	{`loudly_consumer_pending{job="order", instance="order:8080", consumer="order-settlement", stream="INVENTORY"}`, "0x430"},
	{`loudly_consumer_acknowledged_total{job="order", instance="order:8080", consumer="order-settlement", stream="INVENTORY"}`, "0+1200x430"},
	{`loudly_consumer_delivered_total{job="order", instance="order:8080", consumer="order-settlement", stream="INVENTORY"}`, "0+1200x430"},
	{`loudly_consumer_pending{job="order", instance="order:8080", consumer="order-deadletters", stream="DEADLETTER"}`, "0x430"},
	{`loudly_consumer_acknowledged_total{job="order", instance="order:8080", consumer="order-deadletters", stream="DEADLETTER"}`, "3x430"},
	{`loudly_consumer_delivered_total{job="order", instance="order:8080", consumer="order-deadletters", stream="DEADLETTER"}`, "3x430"},
	{`loudly_outbox_backlog{job="order", instance="order:8080", table="orders.outbox"}`, "0x430"},
	{`loudly_telemetry_spans_dropped_total{job="order", instance="order:8080", reason="queue_full"}`, "0x430"},
	{`loudly_telemetry_log_dropped_total{job="order", instance="order:8080", sink="loki"}`, "0x430"},
	{`loudly_outbox_oldest_age_seconds{job="order", instance="order:8080", table="orders.outbox"}`, "0x430"},
	{`loudly_outbox_backlog{job="inventory", instance="inventory:8081", table="inventory.outbox"}`, "0x430"},
	{`loudly_outbox_oldest_age_seconds{job="inventory", instance="inventory:8081", table="inventory.outbox"}`, "0x430"},
}, servicesUp("1x430")...)

// servicesUp is an up series for every service of services.All, with values.
func servicesUp(values string) []Series {
	var out []Series
	for _, s := range services.All {
		out = append(out, Series{fmt.Sprintf(`up{job=%q, instance="%s:%d"}`, s.Name, s.Name, s.Port), values})
	}
	return out
}

// HealthyChecks are the times at which no rule may fire on Healthy: early, after the
// long windows filled, and at the end.
var HealthyChecks = []time.Duration{15 * time.Minute, time.Hour, 6*time.Hour + 30*time.Minute, 7 * time.Hour}

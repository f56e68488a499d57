package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// SLO of order settlement, shared with the alert rules: the share of accepted orders that
// settle (confirmed or rejected, not failed) is at least SLOObjective.
const (
	SLOObjective   = 0.995
	SLOErrorBudget = 1 - SLOObjective
)

// SLOSuccessRatio is the PromQL of the order-success SLI over window w: orders settled
// confirmed or rejected (the business answered) over orders accepted. Failed orders and
// orders never settled both count against it, so an outage that settles nothing burns
// the budget as fast as one that fails everything. Above 1 while a backlog drains.
func SLOSuccessRatio(w string) string {
	return fmt.Sprintf(`(sum(rate(loudly_orders_settled_total{status!="failed"}[%s])) or vector(0)) / sum(rate(loudly_orders_accepted_total[%s]))`, w, w)
}

// SLOErrorRatio is 1 - SLOSuccessRatio(w): the share of accepted orders that failed or
// did not settle.
func SLOErrorRatio(w string) string { return "(1 - " + SLOSuccessRatio(w) + ")" }

// Panel titles the alert rules point at.
const (
	PanelAcceptedVsSettled = "Orders accepted vs settled"
	PanelSettledByStatus   = "Settled orders by status"
	PanelBurnRate          = "Error-budget burn rate (order success SLO)"
	PanelUnsettled         = "Unsettled orders (pending past the deadline)"
	PanelDeadLetters       = "Dead letters waiting, by consumer"
	PanelInvalid           = "Invalid and dead-lettered decisions, by reason"
	PanelDecisions         = "Decisions by outcome and reason (exemplars: click a dot for its trace)"
	PanelSettlementLatency = "Settlement latency (accepted → final status)"
)

// Business is the business-throughput dashboard: are orders getting through, and if not,
// which ones, why, and where is the trace?
func Business() (dashboard.Dashboard, error) {
	return finish(dashboard.NewDashboardBuilder("Loudly · Business throughput").
		Uid(BusinessUID).
		Description("Are orders getting through? Accepted vs settled, the success SLO, unsettled orders, dead letters, every decision by reason with exemplars, and the log line of every decision that was not applied.").
		Tags([]string{"loudly", "business"}).
		Editable().Refresh("10s").Time("now-30m", "now").Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(link("Consumer internals", "Why: consumers, outboxes, database, HTTP, runtime", "dashboard",
			"/d/"+ConsumersUID, true)).
		Link(link("Failing traces (Tempo)", "Traces with an error status: invalid or dead-lettered decisions, failed requests", "bolt",
			tempoSearch(`{ status = error }`, "now-1h", "now", nil), false)).
		Link(link("Non-happy decisions (Loki)", "Every decision log line whose outcome is not applied", "doc",
			lokiSearch(NonHappyDecisions, "now-1h", "now", nil), false)).

		// Throughput: what goes in must come out.
		WithRow(row("Orders")).
		WithPanel(graph(PanelAcceptedVsSettled,
			"Orders the API accepted (202) and orders that reached a final status (confirmed, rejected or failed), per minute. "+
				"The lines overlap while the pipeline keeps up. A gap that stays open is LoudlyThroughputDivergence; accepted at zero while load is expected is LoudlyNoOrders.",
			"opm",
			query(`sum(rate(loudly_orders_accepted_total[$__rate_interval])) * 60`, "accepted"),
			query(`sum(rate(loudly_orders_settled_total[$__rate_interval])) * 60`, "settled"),
		).OverrideByName("accepted", []dashboard.DynamicConfigValue{fixedColor("blue")}).
			OverrideByName("settled", []dashboard.DynamicConfigValue{fixedColor("green"), prop("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{10, 10}})})).
		WithPanel(graph(PanelSettledByStatus,
			"Orders reaching a final status per minute, stacked. Rejected is the business saying no (unknown SKU, out of stock); "+
				"failed means the order's event was dead-lettered. A rejected share above 15% is LoudlyRejectionRateHigh.",
			"opm",
			query(`sum by (status) (rate(loudly_orders_settled_total[$__rate_interval])) * 60`, "{{status}}"),
		).Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).FillOpacity(40).
			OverrideByName("confirmed", []dashboard.DynamicConfigValue{fixedColor("green")}).
			OverrideByName("rejected", []dashboard.DynamicConfigValue{fixedColor("orange")}).
			OverrideByName("failed", []dashboard.DynamicConfigValue{fixedColor("red")})).
		WithPanel(single("Settled ÷ accepted (5m)",
			"Orders settled over orders accepted in the last 5 minutes. About 100% while the pipeline keeps up; above 100% while a backlog drains.",
			"percentunit",
			query(`sum(rate(loudly_orders_settled_total[5m])) / sum(rate(loudly_orders_accepted_total[5m]))`, "settled ÷ accepted"),
			thresholds("red", 0.9, "orange", 0.98, "green"),
		).Decimals(1)).
		WithPanel(single("Order success SLI (1h) · objective 99.5%",
			"Accepted orders that settled confirmed or rejected (not failed, not missing) over the last hour. The SLO's objective is 99.5%.",
			"percentunit",
			query(SLOSuccessRatio("1h"), "success"),
			thresholds("red", 0.99, "orange", SLOObjective, "green"),
		).Decimals(2)).
		WithPanel(graph(PanelBurnRate,
			"How fast the order-success error budget (0.5%) burns: 1 = exactly on budget over 30 days. "+
				"Pages (LoudlyOrderSLOFastBurn) when 1h and 5m both exceed 14.4; tickets (LoudlyOrderSLOSlowBurn) when 6h and 30m both exceed 6.",
			"suffix:×",
			query(SLOErrorRatio("5m")+fmt.Sprintf(" / %g", SLOErrorBudget), "5m"),
			query(SLOErrorRatio("30m")+fmt.Sprintf(" / %g", SLOErrorBudget), "30m"),
			query(SLOErrorRatio("1h")+fmt.Sprintf(" / %g", SLOErrorBudget), "1h"),
			query(SLOErrorRatio("6h")+fmt.Sprintf(" / %g", SLOErrorBudget), "6h"),
		).Thresholds(thresholds("green", 6.0, "orange", 14.4, "red")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))).

		// Stuck and lost: the reconciler and the dead-letter stream.
		WithRow(row("Stuck and lost orders")).
		WithPanel(graph(PanelUnsettled,
			"From the reconciler: orders still pending past the settlement deadline, and the age of the oldest (right axis) against the deadline. "+
				"It counts what the business expected and did not get, so it rises even when a consumer acks events it never applied. Above zero for 2m is LoudlyUnsettledOrders.",
			"short",
			query(`max(loudly_orders_unsettled)`, "unsettled orders"),
			query(`max(loudly_orders_unsettled_oldest_age_seconds)`, "oldest unsettled age"),
			query(`max(loudly_orders_settlement_deadline_seconds)`, "settlement deadline"),
		).OverrideByName("unsettled orders", []dashboard.DynamicConfigValue{fixedColor("red")}).
			OverrideByName("oldest unsettled age", []dashboard.DynamicConfigValue{prop("unit", "s"), prop("custom.axisPlacement", "right"), fixedColor("orange")}).
			OverrideByName("settlement deadline", []dashboard.DynamicConfigValue{prop("unit", "s"), prop("custom.axisPlacement", "right"), fixedColor("text"),
				prop("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{10, 10}}), prop("custom.fillOpacity", 0)})).
		WithPanel(single("Unsettled orders now",
			"Orders pending past the settlement deadline at the reconciler's last look.",
			"short",
			query(`max(loudly_orders_unsettled)`, "unsettled"),
			thresholds("green", 1.0, "red"),
		)).
		WithPanel(single("Dead letters waiting",
			"Letters in the DEADLETTER stream, all consumers. Each is a message Loudly gave up on, kept with its reason: list them with `go run ./cmd/loudly dlq list`.",
			"short",
			query(`sum(max by (consumer) (loudly_deadletter_messages)) or vector(0)`, "dead letters"),
			thresholds("green", 1.0, "orange"),
		)).
		WithPanel(graph(PanelDeadLetters,
			"Letters waiting in the DEADLETTER stream, by the consumer that gave them up. A rise is LoudlyDeadLettersArriving; a redrive brings it down.",
			"short",
			query(`max by (consumer) (loudly_deadletter_messages)`, "{{consumer}}"),
		)).
		WithPanel(graph(PanelInvalid,
			"Decisions whose outcome is invalid (can never be processed) or dead_lettered (retries exhausted), per minute, by service, stage and reason. "+
				"Stage http is a client's bad request; stage consume is an event nobody can process (LoudlyInvalidRateHigh). Dots are exemplars: click one for its trace.",
			"opm",
			query(`sum by (job, stage, outcome, reason) (rate(loudly_decisions_total{outcome=~"invalid|dead_lettered"}[$__rate_interval])) * 60`,
				"{{job}} {{stage}} {{outcome}}: {{reason}}").Exemplar(true),
		).DataLinks(reasonLinks())).

		// Decisions: every branch taken, with the trace of an example.
		WithRow(row("Decisions")).
		WithPanel(graph(PanelDecisions,
			"Every decision the services took, per minute, by service, stage, outcome and reason. Each dot is an exemplar carrying the trace id of one decision: "+
				"click it to open the trace in Tempo. Series links open the traces and log lines of a reason.",
			"opm",
			query(`sum by (job, stage, outcome, reason) (rate(loudly_decisions_total[$__rate_interval])) * 60`,
				"{{job}} {{stage}} {{outcome}}: {{reason}}").Exemplar(true),
		).DataLinks(reasonLinks()).Height(10).Span(24).
			Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeTable).Placement(common.LegendPlacementRight).
				ShowLegend(true).Calcs([]string{"lastNotNull", "max"}))).
		WithPanel(logLines("Every decision that was not applied",
			"The log line of every decision whose outcome is not applied (rejected, duplicate, invalid, retry, dead_lettered), newest first, from both services. "+
				"Each line carries trace_id, order_id and event_id; the trace_id opens the trace in Tempo.",
			NonHappyDecisions)).

		// Latency: accept → final status, with exemplars.
		WithRow(row("Settlement latency")).
		WithPanel(graph(PanelSettlementLatency,
			"Time from accepting an order to its final status: median, 95th and 99th percentile. The 99th percentile shows exemplars: click one for the trace of a slow order.",
			"s",
			query(`histogram_quantile(0.5, sum by (le) (rate(loudly_order_settlement_duration_seconds_bucket[$__rate_interval])))`, "p50"),
			query(`histogram_quantile(0.95, sum by (le) (rate(loudly_order_settlement_duration_seconds_bucket[$__rate_interval])))`, "p95"),
			query(`histogram_quantile(0.99, sum by (le) (rate(loudly_order_settlement_duration_seconds_bucket[$__rate_interval])))`, "p99").Exemplar(true),
		)).
		WithPanel(distribution("Settlement latency distribution",
			"Settled orders per second by settlement-latency bucket. Exemplars (dots) link to the trace of one order in that bucket.",
			query(`sum by (le) (rate(loudly_order_settlement_duration_seconds_bucket[$__rate_interval]))`, "{{le}}"),
		)))
}

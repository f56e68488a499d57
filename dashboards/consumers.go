package dashboards

import (
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"loudly/services"
)

// Panel titles the alert rules point at.
const (
	PanelPending         = "Pending: in the stream, not yet delivered"
	PanelOutboxAge       = "Oldest unpublished outbox event"
	PanelConsumeOutcomes = "Consume decisions by outcome"
	PanelTelemetryDrops  = "Telemetry dropped"
	PanelDBTimeouts      = "Database waits timed out"
)

// servicesJobs selects the Loudly services' series of metrics every Go program exports
// (runtime, HTTP, database): the demo's Prometheus also scrapes NATS, the collector, Loki
// and Tempo. The services are those of services.All, whose names are their jobs.
func servicesJobs() string { return `job=~"` + strings.Join(services.Names(), "|") + `"` }

// ServiceUpPanel is the title of the panel that shows how many instances of service answer
// Prometheus's scrape; its Loudly<Service>Down alert points at it.
func ServiceUpPanel(service string) string { return service + ": instances up" }

// Consumers is the consumer-internals dashboard: when orders do not get through, where
// does the pipeline stick? JetStream consumers, outboxes, PostgreSQL, HTTP, the Go runtime
// and the telemetry pipeline.
//
// Consumer and outbox gauges come from state every replica sees the same way (consumer
// info, the outbox table), so they are aggregated with max, never sum.
func Consumers() (dashboard.Dashboard, error) {
	byConsumer := "{{consumer}} ({{stream}})"
	jobs := servicesJobs()
	b := dashboard.NewDashboardBuilder("Loudly · Consumer internals").
		Uid(ConsumersUID).
		Description("Where does the pipeline stick? JetStream consumer state, outboxes, PostgreSQL, HTTP, the Go runtime and the telemetry pipeline of the "+
			sentence(services.Names())+" services, then one row per service.").
		Tags([]string{"loudly", "internals"}).
		Editable().Refresh("10s").Time("now-30m", "now").Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(link("Business throughput", "Are orders getting through?", "dashboard", "/d/"+BusinessUID, true)).
		Link(link("Failing traces (Tempo)", "Traces with an error status", "bolt",
			tempoSearch(`{ status = error }`, "now-1h", "now", nil), false)).

		// JetStream consumers: inventory (ORDERS), order-settlement (INVENTORY),
		// order-deadletters (DEADLETTER).
		WithRow(row("JetStream consumers")).
		WithPanel(graph(PanelPending,
			"Messages in the consumer's stream not yet delivered to it. Near zero while the consumer keeps up; growing while nothing is acknowledged is LoudlyConsumerStalled.",
			"short",
			query(`max by (consumer, stream) (loudly_consumer_pending)`, byConsumer),
		).Span(8)).
		WithPanel(graph("Ack pending: delivered, not yet acknowledged",
			"Messages in flight in the consumer's handlers, or waiting for a retry's backoff. It cannot exceed CONSUMER_MAX_ACK_PENDING; at that ceiling the consumer gets nothing new.",
			"short",
			query(`max by (consumer, stream) (loudly_consumer_ack_pending)`, byConsumer),
		).Span(8)).
		WithPanel(graph("Redelivered, not yet acknowledged",
			"Messages delivered more than once (a retry, or an ack that did not arrive within CONSUMER_ACK_WAIT) and still not acknowledged.",
			"short",
			query(`max by (consumer, stream) (loudly_consumer_redelivered)`, byConsumer),
		).Span(8)).
		WithPanel(graph("Delivered vs acknowledged",
			"Deliveries (redeliveries included) and acknowledgements per second, from the consumer's sequence numbers. "+
				"Acknowledged far below delivered means messages come back again and again.",
			"ops",
			query(`max by (consumer) (rate(loudly_consumer_delivered_total[$__rate_interval]))`, "{{consumer}} delivered"),
			query(`max by (consumer) (rate(loudly_consumer_acknowledged_total[$__rate_interval]))`, "{{consumer}} acknowledged"),
		).Span(8)).
		WithPanel(graph("Processing time p95, by consumer and outcome",
			"95th percentile of the time from receiving a message to settling it. Exemplars link to the trace of one message.",
			"s",
			query(`histogram_quantile(0.95, sum by (consumer, outcome, le) (rate(loudly_consumer_process_duration_seconds_bucket[$__rate_interval])))`,
				"{{consumer}} {{outcome}}").Exemplar(true),
		).Span(8)).
		WithPanel(graph("Batch size, by consumer",
			"Messages in each batch a batch consumer decided in one transaction: the mean, and the 95th percentile (of power-of-two buckets). "+
				"Near CONSUMER_BATCH_SIZE the consumer is behind and every transaction carries a full batch; near 1 it keeps up and decides messages as they arrive.",
			"short",
			query(`sum by (consumer) (rate(loudly_consumer_batch_size_sum[$__rate_interval])) / sum by (consumer) (rate(loudly_consumer_batch_size_count[$__rate_interval]))`,
				"{{consumer}} mean"),
			query(`histogram_quantile(0.95, sum by (consumer, le) (rate(loudly_consumer_batch_size_bucket[$__rate_interval])))`, "{{consumer}} p95"),
		).Span(8)).
		WithPanel(graph(PanelConsumeOutcomes,
			"Consume-stage decisions per second by service and outcome. retry and duplicate are redeliveries (LoudlyRedeliveriesHigh); invalid and dead_lettered go to the dead-letter stream.",
			"ops",
			query(`sum by (job, outcome) (rate(loudly_decisions_total{stage="consume"}[$__rate_interval]))`, "{{job}} {{outcome}}"),
		).Span(8)).

		// Outboxes: orders.outbox (order service), inventory.outbox (inventory service).
		WithRow(row("Outboxes")).
		WithPanel(graph("Outbox backlog",
			"Outbox rows not yet published to JetStream. Written in the same transaction as the business change; the relay publishes them and waits for the broker's ack.",
			"short",
			query(`max by (table) (loudly_outbox_backlog)`, "{{table}}"),
		).Span(8)).
		WithPanel(graph(PanelOutboxAge,
			"Age of the oldest row not yet published. Above a minute and not shrinking is LoudlyOutboxBacklogGrowing: the relay cannot publish (NATS down, or the relay stuck).",
			"s",
			query(`max by (table) (loudly_outbox_oldest_age_seconds)`, "{{table}}"),
		).Span(8)).
		WithPanel(graph("Outbox published",
			"Events published and acknowledged by JetStream per second.",
			"ops",
			query(`sum by (table) (rate(loudly_outbox_published_total[$__rate_interval]))`, "{{table}}"),
		).Span(8)).

		// PostgreSQL, through otelpgx and the pgx pool.
		WithRow(row("PostgreSQL")).
		WithPanel(graph("Database operation latency p95 (otelpgx)",
			"95th percentile duration of PostgreSQL operations by service and pgx operation type.",
			"s",
			query(`histogram_quantile(0.95, sum by (job, pgx_operation_type, le) (rate(db_client_operation_duration_seconds_bucket{`+jobs+`}[$__rate_interval])))`,
				"{{job}} {{pgx_operation_type}}"),
		).Span(8)).
		WithPanel(graph("Connection pool",
			"Connections of each service's pgx pool: acquired (in use), idle, and the maximum (DB_MAX_CONNS).",
			"short",
			query(`sum by (job) (pgxpool_acquired_connections{`+jobs+`})`, "{{job}} acquired"),
			query(`sum by (job) (pgxpool_idle_connections{`+jobs+`})`, "{{job}} idle"),
			query(`sum by (job) (pgxpool_max_connections{`+jobs+`})`, "{{job}} max"),
		).Span(8)).
		WithPanel(graph("Connection acquire time (mean)",
			"Mean time to get a connection from the pool. It rises when every connection is busy: the pool, not the database, is the bottleneck.",
			"s",
			query(`sum by (job) (rate(pgxpool_acquire_duration_nanoseconds_total{`+jobs+`}[$__rate_interval])) / sum by (job) (rate(pgxpool_acquires_total{`+jobs+`}[$__rate_interval])) / 1e9`, "{{job}}"),
		).Span(8)).
		WithPanel(graph(PanelDBTimeouts,
			"Waits on PostgreSQL (a connection, a statement, a batch) that ran past DB_TIMEOUT, per second. Non-zero is LoudlyDatabaseStalled: the primary's commits wait for a synchronous standby that is gone, the network to it drops packets, or it is saturated.",
			"ops",
			query(`sum by (job, wait) (rate(loudly_db_timeouts_total[$__rate_interval]))`, "{{job}} {{wait}}"),
		).Span(8)).

		// HTTP, through otelhttp.
		WithRow(row("HTTP")).
		WithPanel(graph("HTTP latency p95, by route",
			"95th percentile server duration of HTTP requests by service and route (otelhttp).",
			"s",
			query(`histogram_quantile(0.95, sum by (job, http_route, le) (rate(http_server_request_duration_seconds_bucket{`+jobs+`}[$__rate_interval])))`,
				"{{job}} {{http_route}}"),
		)).
		WithPanel(graph("HTTP requests, by route and status",
			"Requests per second by service, route and status code. 4xx on POST /v1/orders are bad requests, each recorded as an http-stage invalid decision.",
			"reqps",
			query(`sum by (job, http_route, http_response_status_code) (rate(http_server_request_duration_seconds_count{`+jobs+`}[$__rate_interval]))`,
				"{{job}} {{http_route}} {{http_response_status_code}}"),
		)).

		// Go runtime and the telemetry pipeline.
		WithRow(row("Go runtime and telemetry")).
		WithPanel(graph("Goroutines", "Goroutines per process.", "short",
			query(`sum by (job, instance) (go_goroutines{`+jobs+`})`, "{{job}} {{instance}}"),
		).Span(8)).
		WithPanel(graph("Heap in use", "Heap bytes in use per process.", "bytes",
			query(`sum by (job, instance) (go_memstats_heap_inuse_bytes{`+jobs+`})`, "{{job}} {{instance}}"),
		).Span(8)).
		WithPanel(graph("Garbage collection",
			"Stop-the-world GC pause time per second of wall time (left) and GC cycles per second (right).",
			"s",
			query(`sum by (job, instance) (rate(go_gc_duration_seconds_sum{`+jobs+`}[$__rate_interval]))`, "{{job}} {{instance}} pause"),
			query(`sum by (job, instance) (rate(go_gc_duration_seconds_count{`+jobs+`}[$__rate_interval]))`, "{{job}} {{instance}} cycles"),
		).OverrideByRegexp(".* cycles$", []dashboard.DynamicConfigValue{prop("unit", "ops"), prop("custom.axisPlacement", "right")}).Span(8)).
		WithPanel(graph("CPU", "CPU seconds per second (cores) per process.", "short",
			query(`sum by (job, instance) (rate(process_cpu_seconds_total{`+jobs+`}[$__rate_interval]))`, "{{job}} {{instance}}"),
		).Span(8)).
		WithPanel(graph(PanelTelemetryDrops,
			"Log records a sink dropped because its backend (Loki) was down or slow (stdout keeps every line), and spans not exported: too many waiting for export (queue_full, OTEL_BSP_MAX_QUEUE_SIZE), the collector failing (export_failed) or refusing some of a batch (rejected, an OTLP partial success). A gap in Loki or a trace an exemplar cannot open is explained here.",
			"ops",
			query(`sum by (job, sink) (rate(loudly_telemetry_log_dropped_total[$__rate_interval]))`, "{{job}} log lines {{sink}}"),
			query(`sum by (job, reason) (rate(loudly_telemetry_spans_dropped_total[$__rate_interval]))`, "{{job}} spans {{reason}}"),
		).Span(8)).
		WithPanel(graph("Active drill faults",
			"Faults injected by `go run ./cmd/loudly drill start`, with their intensity. Empty outside drills. (The silent-skip drill is invisible here on purpose.)",
			"short",
			query(`max by (job, fault) (loudly_fault_active) > 0`, "{{job}} {{fault}}"),
		).Span(8))
	for _, s := range services.All {
		b = serviceRow(b, s)
	}
	return finish(b)
}

// serviceRow adds the row of one service of services.All: is it up, what does it decide,
// does its consumer keep up, and (if it has one) does its outbox drain. `loudly new
// service` adds a service to the list, and the next go generate gives it this row.
func serviceRow(b *dashboard.DashboardBuilder, s services.Service) *dashboard.DashboardBuilder {
	job := fmt.Sprintf(`job=%q`, s.Name)
	width := uint32(8)
	if s.Outbox {
		width = 6
	}
	b = b.WithRow(row("Service: " + s.Name + " (" + s.About + ")")).
		WithPanel(graph(ServiceUpPanel(s.Name),
			fmt.Sprintf("Instances of %s answering Prometheus's scrape of /metrics (port %d). At zero for 2m, or never scraped at all, is %s: "+
				"nothing consumes its messages, which wait in their stream.", s.Name, s.Port, "Loudly"+s.CamelName()+"Down"),
			"short",
			query(`sum(up{`+job+`})`, "instances up"),
		).Span(width)).
		WithPanel(graph(s.Name+": decisions by stage, outcome and reason",
			"Every decision "+s.Name+" took, per second. A handler that is not written yet rejects every message with reason not_implemented. Exemplars link to the trace of one decision.",
			"ops",
			query(`sum by (stage, outcome, reason) (rate(loudly_decisions_total{`+job+`}[$__rate_interval]))`, "{{stage}} {{outcome}}: {{reason}}").Exemplar(true),
		).DataLinks(reasonLinks()).Span(width)).
		WithPanel(graph(s.Name+": consumer backlog",
			"Messages waiting for "+s.Name+"'s durable consumers (pending) and delivered but not yet acknowledged (ack pending).",
			"short",
			query(`max by (consumer, stream) (loudly_consumer_pending{`+job+`})`, "{{consumer}} ({{stream}}) pending"),
			query(`max by (consumer, stream) (loudly_consumer_ack_pending{`+job+`})`, "{{consumer}} ({{stream}}) ack pending"),
		).Span(width))
	if s.Outbox {
		b = b.WithPanel(graph(s.Name+": outbox",
			"Rows of "+s.OutboxTable()+" not yet published (left) and the age of the oldest (right). Both near zero while the relay keeps up.",
			"short",
			query(`max by (table) (loudly_outbox_backlog{`+job+`})`, "{{table}} backlog"),
			query(`max by (table) (loudly_outbox_oldest_age_seconds{`+job+`})`, "{{table}} oldest age"),
		).OverrideByRegexp(".* oldest age$", []dashboard.DynamicConfigValue{prop("unit", "s"), prop("custom.axisPlacement", "right")}).Span(width))
	}
	return b
}

// sentence joins names the way a sentence lists them: "a", "a and b", "a, b and c".
func sentence(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

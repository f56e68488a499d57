// Package drill is the demo's catalogue of on-call drills: the faults the order and
// inventory services can be made to suffer, what intensity each takes, and which alerts
// each drill teaches an on-call engineer to read. docs/drills/<name>.md is each drill's
// guide.
//
// The mechanism — the fault bucket, starting and stopping a fault, a service's watcher —
// is package faults, which knows no drill: a service cloned from the template keeps it and
// writes its own catalogue, or none. This package is where the demo's drills meet it: it
// checks a fault against the catalogue before switching it on (Start), and tells a
// service's watcher which faults to export as gauges (Watch).
package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"

	"loudly/pkg/faults"
)

// Drill names: the fault each drill switches on, as the services look it up.
const (
	SilentSkip  = "silent-skip"
	SchemaDrift = "schema-drift"
	PoisonFlood = "poison-flood"
	DBLatency   = "db-latency"
	DBOutage    = "db-outage"
	StockOut    = "stock-out"
	OutboxStall = "outbox-stall"
	AckTimeout  = "ack-timeout"
)

// Spec describes a drill: its fault, and what the drill teaches.
type Spec struct {
	Name        string
	Service     string  // where it acts
	Unit        string  // what Intensity means: "fraction" of events, "seconds" of latency, "events/s", "on/off"
	Default     float64 // intensity when none is given
	Max         float64
	Silent      bool     // no gauge, no span attribute: the silent-skip drill
	Alerts      []string // the alerts the drill teaches; at least one must fire
	Quiet       []string // alerts that must NOT fire (silent-skip: the consumer's own signals)
	Description string
}

// Catalog lists every drill, in the order the tools show them.
var Catalog = []Spec{
	{Name: SilentSkip, Service: "inventory", Unit: "fraction", Default: 0.2, Max: 1, Silent: true,
		Alerts: []string{"LoudlyUnsettledOrders", "LoudlyThroughputDivergence"}, Quiet: []string{"LoudlyInvalidRateHigh"},
		Description: "the inventory consumer acks a fraction of valid order events without applying them, and records them as applied"},
	{Name: SchemaDrift, Service: "order", Unit: "fraction", Default: 0.3, Max: 1,
		Alerts:      []string{"LoudlyDeadLettersArriving", "LoudlyInvalidRateHigh"},
		Description: "the order service emits a fraction of order.placed events with an unknown envelope version"},
	{Name: PoisonFlood, Service: "order", Unit: "events/s", Default: 20, Max: 1000,
		Alerts:      []string{"LoudlyInvalidRateHigh", "LoudlyDeadLettersArriving"},
		Description: "malformed events are published straight to orders.placed at this rate"},
	{Name: DBLatency, Service: "inventory", Unit: "seconds", Default: 2, Max: 30,
		Alerts:      []string{"LoudlyThroughputDivergence", "LoudlyUnsettledOrders"},
		Description: "every reservation waits this long inside the database (a batch of n, n times as long, up to the ack wait)"},
	{Name: DBOutage, Service: "inventory", Unit: "fraction", Default: 1, Max: 1,
		Alerts:      []string{"LoudlyConsumerStalled", "LoudlyThroughputDivergence", "LoudlyOrderSLOFastBurn"},
		Description: "this fraction of reservations fail as if the database were unreachable"},
	{Name: StockOut, Service: "inventory", Unit: "fraction", Default: 1, Max: 1,
		Alerts:      []string{"LoudlyRejectionRateHigh"},
		Description: "the hot SKU (BOOK-001) reads as out of stock for this fraction of orders"},
	{Name: OutboxStall, Service: "order", Unit: "on/off", Default: 1, Max: 1,
		Alerts:      []string{"LoudlyOutboxBacklogGrowing"},
		Description: "the order service's outbox relay stops publishing"},
	{Name: AckTimeout, Service: "inventory", Unit: "fraction", Default: 0.1, Max: 1,
		Alerts:      []string{"LoudlyRedeliveriesHigh"},
		Description: "this fraction of reservations stall past the ack wait after committing, without in-progress heartbeats"},
}

// Lookup returns the catalogue entry for name.
func Lookup(name string) (Spec, bool) {
	for _, s := range Catalog {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// Start switches a drill's fault on (or changes it), after checking it against the
// catalogue: intensity 0 takes the drill's default, and one outside 0..Max is refused; d 0
// means until stopped.
func Start(ctx context.Context, js jetstream.JetStream, name string, intensity float64, d time.Duration) (faults.Fault, error) {
	spec, ok := Lookup(name)
	if !ok {
		return faults.Fault{}, fmt.Errorf("unknown fault %q", name)
	}
	if intensity == 0 {
		intensity = spec.Default
	}
	if intensity < 0 || intensity > spec.Max {
		return faults.Fault{}, fmt.Errorf("fault %s: intensity %g outside 0..%g (%s)", name, intensity, spec.Max, spec.Unit)
	}
	return faults.Start(ctx, js, name, intensity, d)
}

// Exported lists the drills whose fault is visible as a gauge: every one but the silent.
func Exported() []string {
	var out []string
	for _, s := range Catalog {
		if !s.Silent {
			out = append(out, s.Name)
		}
	}
	return out
}

// Watch starts a service's watcher of the fault bucket, exporting loudly_fault_active for
// every drill but the silent one.
func Watch(ctx context.Context, js jetstream.JetStream, meter metric.Meter) (*faults.Watcher, error) {
	return faults.Watch(ctx, js, meter, Exported())
}

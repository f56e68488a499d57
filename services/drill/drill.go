// Package drill is the on-call drills, as an add-on a service attaches in one line of its
// New: the catalogue of drills (the faults, what intensity each takes, which alerts each
// teaches an on-call engineer to read; docs/drills/<name>.md is each drill's guide), the
// switch that lets a deployment take part (DRILLS=enabled, Config), the control path that
// starts a drill only in a service that accepts it (Start, Check, Accept), and the
// reusable fault pieces a service wires around its own code: consumer middleware
// (silent-skip, db-outage, ack-timeout), a seam for its transactions (db-latency) and a
// publisher decorator (outbox-stall). A few drills act through pieces only one service has
// (the order service's schema-drift and poison-flood, inventory's stock-out).
//
// The mechanism underneath — the fault bucket, a fault's target and intensity, a service's
// watcher — is package faults, which knows no drill. Nothing else under pkg/ knows drills:
// a service that never calls Attach never touches the bucket.
package drill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
	Name    string
	Service string // where it acts, unless started in another service
	// Generic: the drill acts through the reusable pieces of this package, so it can be
	// started in any service that wires them (Start's service), not only in Service.
	Generic     bool
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
	{Name: SilentSkip, Service: "inventory", Generic: true, Unit: "fraction", Default: 0.2, Max: 1, Silent: true,
		Alerts: []string{"LoudlyUnsettledOrders", "LoudlyThroughputDivergence"}, Quiet: []string{"LoudlyInvalidRateHigh"},
		Description: "the inventory consumer acks a fraction of valid order events without applying them, and records them as applied"},
	{Name: SchemaDrift, Service: "order", Unit: "fraction", Default: 0.3, Max: 1,
		Alerts:      []string{"LoudlyDeadLettersArriving", "LoudlyInvalidRateHigh"},
		Description: "the order service emits a fraction of order.placed events with an unknown envelope version"},
	{Name: PoisonFlood, Service: "order", Unit: "events/s", Default: 20, Max: 1000,
		Alerts:      []string{"LoudlyInvalidRateHigh", "LoudlyDeadLettersArriving"},
		Description: "malformed events are published straight to orders.placed at this rate"},
	{Name: DBLatency, Service: "inventory", Generic: true, Unit: "seconds", Default: 2, Max: 30,
		Alerts:      []string{"LoudlyThroughputDivergence", "LoudlyUnsettledOrders"},
		Description: "every reservation waits this long inside the database (a batch of n, n times as long, up to the ack wait)"},
	{Name: DBOutage, Service: "inventory", Generic: true, Unit: "fraction", Default: 1, Max: 1,
		Alerts:      []string{"LoudlyConsumerStalled", "LoudlyThroughputDivergence", "LoudlyOrderSLOFastBurn"},
		Description: "this fraction of reservations fail as if the database were unreachable"},
	{Name: StockOut, Service: "inventory", Unit: "fraction", Default: 1, Max: 1,
		Alerts:      []string{"LoudlyRejectionRateHigh"},
		Description: "the hot SKU (BOOK-001) reads as out of stock for this fraction of orders"},
	{Name: OutboxStall, Service: "order", Generic: true, Unit: "on/off", Default: 1, Max: 1,
		Alerts:      []string{"LoudlyOutboxBacklogGrowing"},
		Description: "the order service's outbox relay stops publishing"},
	{Name: AckTimeout, Service: "inventory", Generic: true, Unit: "fraction", Default: 0.1, Max: 1,
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

// Start switches a drill's fault on (or changes it) in service — empty for the drill's
// own (Spec.Service); another only for a generic drill — after checking it against the
// catalogue — intensity 0 takes the drill's default, and one outside 0..Max is refused; d
// 0 means until stopped — and after asking the service whether it accepts drills
// (Check): a deployment with drills off gets no fault written, and an error saying why
// (ErrNotAccepted).
func Start(ctx context.Context, js jetstream.JetStream, name, service string, intensity float64, d time.Duration) (faults.Fault, error) {
	spec, ok := Lookup(name)
	if !ok {
		return faults.Fault{}, fmt.Errorf("unknown fault %q", name)
	}
	if service == "" {
		service = spec.Service
	}
	if service != spec.Service && !spec.Generic {
		return faults.Fault{}, fmt.Errorf("drill %s acts only in %s (its fault is in %s's own code), not in %s", name, spec.Service, spec.Service, service)
	}
	if intensity == 0 {
		intensity = spec.Default
	}
	if intensity < 0 || intensity > spec.Max {
		return faults.Fault{}, fmt.Errorf("fault %s: intensity %g outside 0..%g (%s)", name, intensity, spec.Max, spec.Unit)
	}
	if err := Check(ctx, js.Conn(), service); err != nil {
		return faults.Fault{}, err
	}
	return faults.Start(ctx, js, name, service, intensity, d)
}

// SubjectPrefix is where a service that accepts drills answers: a core NATS request to
// SubjectPrefix + the service's name gets a reply from it, and no reply at all (no
// responders) when no running instance has drills enabled.
const SubjectPrefix = "loudly.drills."

// ErrNotAccepted is Check's answer for a service that does not accept drills.
var ErrNotAccepted = errors.New("does not accept drills (DRILLS is not enabled)")

// CheckTimeout bounds Check when ctx has no earlier deadline.
const CheckTimeout = 2 * time.Second

// Check asks the running service svc whether it accepts drills. It fails with
// ErrNotAccepted (naming the service) when no instance of it answers because none has
// drills enabled, or none runs.
func Check(ctx context.Context, nc *nats.Conn, svc string) error {
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	_, err := nc.RequestWithContext(ctx, SubjectPrefix+svc, nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("%s %w: start it with DRILLS=enabled to run its drills (or it is not running)", svc, ErrNotAccepted)
	case err != nil:
		return fmt.Errorf("asking %s whether it accepts drills: %w", svc, err)
	}
	return nil
}

// Accept answers Check for svc on nc, until the subscription is drained or nc closed.
// Replicas answer in one queue group: one reply per request.
func Accept(nc *nats.Conn, svc string) (*nats.Subscription, error) {
	return nc.QueueSubscribe(SubjectPrefix+svc, "loudly-drills", func(m *nats.Msg) {
		_ = m.Respond([]byte("drills enabled")) // a lost reply is the requester's timeout
	})
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

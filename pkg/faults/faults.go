// Package faults is Loudly's runtime fault injection for on-call drills. Faults live in one
// place, a JetStream key-value bucket, and services watch it: starting, changing or
// stopping a fault needs no restart, and nothing else — no header, no query string, no
// request from outside the control path — can switch one on.
//
// Every active fault is visible (a gauge per fault, and a loudly.fault attribute on the
// spans it touches) except silent-skip, whose whole point is to reproduce the original
// outage: a consumer that acks events it never applied and says nothing.
package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Bucket is the key-value bucket holding active faults, one key per fault name.
const Bucket = "LOUDLY_FAULTS"

// Fault names.
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

// Spec describes a fault of the catalog and the drill built on it.
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

// Catalog lists every fault a drill can start. docs/drills/<name>.md is each drill's guide.
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
		Description: "every reservation transaction waits this long inside the database"},
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

// Lookup returns the catalog entry for name.
func Lookup(name string) (Spec, bool) {
	for _, s := range Catalog {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// Fault is an active fault.
type Fault struct {
	Name      string    `json:"name"`
	Intensity float64   `json:"intensity"`
	Started   time.Time `json:"started"`
	Until     time.Time `json:"until"` // zero: until stopped
}

// Active reports whether f is in force at now.
func (f Fault) Active(now time.Time) bool { return f.Until.IsZero() || now.Before(f.Until) }

// BucketConfig is the fault bucket with the given number of replicas (0 means 1).
func BucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Active drill faults (loudly drill start|stop).",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// ConfigureBucket creates the fault bucket or updates it to BucketConfig(replicas),
// scaling an existing bucket up or down on a cluster. Services call it at start-up
// (broker.EnsureStreamsWith does), with the replica count of their streams.
func ConfigureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, BucketConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("fault bucket %s with %d replicas: %w", Bucket, max(replicas, 1), err)
	}
	return kv, nil
}

// EnsureBucket opens the fault bucket, creating it with one replica if it does not
// exist yet. It never changes an existing bucket: the drill commands and the watchers
// call it, and they must not scale back down a bucket the services replicated.
func EnsureBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, BucketConfig(1))
		if errors.Is(err, jetstream.ErrBucketExists) { // created by someone else meanwhile
			kv, err = js.KeyValue(ctx, Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fault bucket: %w", err)
	}
	return kv, nil
}

// Start switches a fault on (or changes it). Intensity 0 takes the catalog default; d 0
// means until stopped.
func Start(ctx context.Context, js jetstream.JetStream, name string, intensity float64, d time.Duration) (Fault, error) {
	spec, ok := Lookup(name)
	if !ok {
		return Fault{}, fmt.Errorf("unknown fault %q", name)
	}
	if intensity == 0 {
		intensity = spec.Default
	}
	if intensity < 0 || intensity > spec.Max {
		return Fault{}, fmt.Errorf("fault %s: intensity %g outside 0..%g (%s)", name, intensity, spec.Max, spec.Unit)
	}
	f := Fault{Name: name, Intensity: intensity, Started: time.Now().UTC()}
	if d > 0 {
		f.Until = f.Started.Add(d)
	}
	kv, err := EnsureBucket(ctx, js)
	if err != nil {
		return f, err
	}
	b, _ := json.Marshal(f)
	_, err = kv.Put(ctx, name, b)
	return f, err
}

// Stop switches a fault off; stopping one that is not active is not an error.
func Stop(ctx context.Context, js jetstream.JetStream, name string) error {
	kv, err := EnsureBucket(ctx, js)
	if err != nil {
		return err
	}
	if err := kv.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return err
	}
	return nil
}

// List returns the faults in the bucket that are still in force.
func List(ctx context.Context, js jetstream.JetStream) ([]Fault, error) {
	kv, err := EnsureBucket(ctx, js)
	if err != nil {
		return nil, err
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Fault
	now := time.Now()
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var f Fault
		if json.Unmarshal(e.Value(), &f) == nil && f.Active(now) {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Watcher keeps a service's view of the active faults, fed by the bucket.
type Watcher struct {
	mu     sync.RWMutex
	active map[string]Fault
	now    func() time.Time
}

// Watch loads the bucket, follows its updates until ctx ends, and exports
// loudly_fault_active{fault} (the intensity while active, else 0) for every fault of the
// catalog except the silent one.
func Watch(ctx context.Context, js jetstream.JetStream, meter metric.Meter) (*Watcher, error) {
	w := &Watcher{active: map[string]Fault{}, now: time.Now}
	kv, err := EnsureBucket(ctx, js)
	if err != nil {
		return nil, err
	}
	watcher, err := kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("fault bucket watch: %w", err)
	}
	go func() {
		defer watcher.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-watcher.Updates():
				if !ok {
					return
				}
				if e != nil {
					w.apply(e)
				}
			}
		}
	}()
	// No unit: the intensity is a fraction, seconds or events/s depending on the fault.
	g, err := meter.Float64ObservableGauge("loudly.fault.active",
		metric.WithDescription("Intensity of each drill fault while it is active, 0 otherwise."))
	if err != nil {
		return nil, err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, s := range Catalog {
			if s.Silent {
				continue
			}
			v := 0.0
			if f, ok := w.Get(s.Name); ok {
				v = f.Intensity
			}
			o.ObserveFloat64(g, v, metric.WithAttributes(attribute.String("fault", s.Name)))
		}
		return nil
	}, g)
	return w, err
}

func (w *Watcher) apply(e jetstream.KeyValueEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(w.active, e.Key())
		return
	}
	var f Fault
	if err := json.Unmarshal(e.Value(), &f); err != nil {
		delete(w.active, e.Key())
		return
	}
	w.active[e.Key()] = f
}

// Get returns the fault if it is active now (an expired fault is off even before
// anyone deletes it).
func (w *Watcher) Get(name string) (Fault, bool) {
	if w == nil {
		return Fault{}, false
	}
	w.mu.RLock()
	f, ok := w.active[name]
	w.mu.RUnlock()
	if !ok || !f.Active(w.now()) {
		return Fault{}, false
	}
	return f, true
}

// Hit reports whether this event is affected by a fraction-type fault: true with
// probability equal to its intensity while it is active.
func (w *Watcher) Hit(name string) bool {
	f, ok := w.Get(name)
	return ok && rand.Float64() < f.Intensity
}

// Attr is the span attribute that marks a span touched by a fault.
func Attr(name string) attribute.KeyValue { return attribute.String("loudly.fault", name) }

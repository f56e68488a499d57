// Package faults is runtime fault injection, for on-call drills. Faults live in one
// place, a JetStream key-value bucket, and services watch it: starting, changing or
// stopping a fault needs no restart, and nothing else — no header, no query string, no
// request from outside the control path — can switch one on.
//
// The package knows no fault by name: a fault is a name and an intensity whose meaning
// belongs to the code that acts on it. Which faults exist, their units and limits, is a
// catalogue the service's own code keeps (the demo's is package loudly/services/drill).
//
// An active fault is visible — a gauge for each fault the watcher is told to export, and
// a loudly.fault attribute on the spans it touches — unless its catalogue keeps it
// silent on purpose (the demo's silent-skip reproduces a consumer that acks events it
// never applied and says nothing).
package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Bucket is the key-value bucket holding active faults, one key per fault name.
const Bucket = "LOUDLY_FAULTS"

// Fault is an active fault.
type Fault struct {
	Name string `json:"name"`
	// Service is the service meant to act on the fault; empty, every service whose code
	// acts on its name does (a fault written before faults had targets, or by hand).
	Service   string    `json:"service,omitempty"`
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
// scaling an existing bucket up or down on a cluster. A service that accepts faults calls
// it at start-up with the replica count of its streams (the demo's drill.Attach does).
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

// Start switches a fault on (or changes it) at intensity, for d (0: until stopped), in
// service (empty: in every service that acts on name). One fault of a name is active at a
// time: starting it again replaces it, target included. It checks only what holds for any
// fault — a name, an intensity not below 0 —; a catalogue checks its own names and limits
// before calling it.
func Start(ctx context.Context, js jetstream.JetStream, name, service string, intensity float64, d time.Duration) (Fault, error) {
	if name == "" {
		return Fault{}, errors.New("fault without a name")
	}
	if intensity < 0 || math.IsNaN(intensity) {
		return Fault{}, fmt.Errorf("fault %s: intensity %g, want 0 or more", name, intensity)
	}
	f := Fault{Name: name, Service: service, Intensity: intensity, Started: time.Now().UTC()}
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

// Watcher keeps a service's view of the faults active in it, fed by the bucket.
type Watcher struct {
	service string
	mu      sync.RWMutex
	active  map[string]Fault
	now     func() time.Time
}

// Watch loads the bucket, follows its updates until ctx ends, and exports
// loudly_fault_active{fault} (the intensity while active, else 0) for each fault named in
// exported. service is the watching service: a fault meant for another is off here. A
// fault not in exported still acts; it is just not on the gauge.
func Watch(ctx context.Context, js jetstream.JetStream, meter metric.Meter, service string, exported []string) (*Watcher, error) {
	exported = slices.Clone(exported)
	w := &Watcher{service: service, active: map[string]Fault{}, now: time.Now}
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
		for _, name := range exported {
			v := 0.0
			if f, ok := w.Get(name); ok {
				v = f.Intensity
			}
			o.ObserveFloat64(g, v, metric.WithAttributes(attribute.String("fault", name)))
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

// Get returns the fault if it is active now in the watcher's service (an expired fault
// is off even before anyone deletes it; one meant for another service is off here).
func (w *Watcher) Get(name string) (Fault, bool) {
	if w == nil {
		return Fault{}, false
	}
	w.mu.RLock()
	f, ok := w.active[name]
	w.mu.RUnlock()
	if !ok || !f.Active(w.now()) || (f.Service != "" && f.Service != w.service) {
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

package drill

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"loudly/pkg/broker"
	"loudly/pkg/env"
	"loudly/pkg/faults"
	"loudly/pkg/service"
)

// Var switches drills on: DRILLS=enabled or disabled (the default).
const Var = "DRILLS"

// Config is whether the deployment accepts drills. Off by default, and off in production:
// a service with drills off does not touch the fault bucket, so a fault written there
// changes nothing. A service's Config embeds it, read by ConfigFromEnv.
type Config struct {
	Enabled bool
}

// ConfigFromEnv reads DRILLS with r, whose Err reports a bad value with the rest of the
// service's configuration.
func ConfigFromEnv(r *env.Reader) Config {
	return Config{Enabled: r.Choice(Var, "disabled", "enabled", "disabled") == "enabled"}
}

// Drills is a service's hold on the drills, from Attach: the faults active in the service,
// and the reusable pieces that act on them (Consumer, Latency, Publisher). A nil *Drills
// is a service with drills off: every fault reads as off and every piece is a no-op, so a
// service wires the pieces the same way either way.
type Drills struct {
	service string
	watcher *faults.Watcher
}

// Attach is where a service meets the drills, once, from its New:
//
//	d, err := drill.Attach(b, cfg.Drills) // nil, every fault off, unless DRILLS=enabled
//
// It exports loudly_drills_enabled{service} (1 or 0) either way; only when the deployment
// enabled drills does it warn so in the log, configure the fault bucket (with the
// service's stream replicas, STREAM_REPLICAS), answer Check and watch the bucket. With
// drills off it returns nil.
func Attach(b *service.Base, cfg Config) (*Drills, error) {
	g, err := b.Tel.Meter().Int64ObservableGauge("loudly.drills.enabled",
		metric.WithDescription("1 while the service accepts drill faults (DRILLS=enabled), 0 otherwise; keep 0 in production."))
	if err != nil {
		return nil, err
	}
	value, attrs := int64(0), metric.WithAttributes(attribute.String("service", b.Name()))
	if cfg.Enabled {
		value = 1
	}
	if _, err := b.Tel.Meter().RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, value, attrs)
		return nil
	}, g); err != nil {
		return nil, err
	}
	if !cfg.Enabled {
		return nil, nil
	}
	// The logger names the service already (telemetry's "service" attribute).
	b.Tel.Logger.Warn("drills enabled (" + Var + "=enabled): anyone allowed to write the " + faults.Bucket +
		" bucket can inject faults into this service; leave " + Var + " unset in production")
	ctx := b.Context()
	replicas := max(b.Config.Broker.Replicas, broker.DefaultReplicas)
	if _, err := faults.ConfigureBucket(ctx, b.JS, replicas); err != nil {
		return nil, fmt.Errorf("drills: %w", err)
	}
	if err := broker.AwaitLeader(ctx, b.JS, "KV_"+faults.Bucket); err != nil { // the stream behind the bucket
		return nil, fmt.Errorf("drills: fault bucket: %w", err)
	}
	sub, err := Accept(b.NC, b.Name())
	if err != nil {
		return nil, fmt.Errorf("drills: answer on %s%s: %w", SubjectPrefix, b.Name(), err)
	}
	b.OnClose(func() { _ = sub.Unsubscribe() })
	w, err := faults.Watch(ctx, b.JS, b.Tel.Meter(), b.Name(), Exported())
	if err != nil {
		return nil, err
	}
	return &Drills{service: b.Name(), watcher: w}, nil
}

// Get returns the drill's fault if it is active in this service.
func (d *Drills) Get(name string) (faults.Fault, bool) {
	if d == nil {
		return faults.Fault{}, false
	}
	return d.watcher.Get(name)
}

// Hit reports whether this event is affected by a fraction-type drill: true with the
// probability of its intensity while it is active in this service.
func (d *Drills) Hit(name string) bool {
	if d == nil {
		return false
	}
	return d.watcher.Hit(name)
}

package demo

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"loudly/pkg/faults"
)

// snapshot is what the live view shows at one moment, read from where an operator
// would read it: the services' /metrics, the fault bucket, Prometheus's alerts.
type snapshot struct {
	at time.Time

	// Counters since the services started (rates come from two snapshots).
	accepted, confirmed, rejected, failed, deadLettered float64

	unsettled float64       // orders pending past the settlement deadline (the reconciler)
	oldest    time.Duration // the oldest of them
	lag       []consumerLag // per durable consumer, largest first

	faults []faults.Fault
	alerts []alertState // pending and firing, firing first

	problems []string // what could not be read this time
}

type consumerLag struct {
	name                string
	pending, ackPending float64
}

type alertState struct {
	name, state string
	severity    string // the rule's severity label: critical, warning
	since       time.Time
}

// watcher reads snapshots.
type watcher struct {
	client     *http.Client
	metricURLs []string // each service's /metrics
	js         jetstream.JetStream
	prom       promv1.API // nil: running without Prometheus
}

func (w *watcher) snapshot(ctx context.Context) snapshot {
	s := snapshot{at: time.Now()}
	lag := map[string]consumerLag{}
	dead := map[string]float64{}
	for _, u := range w.metricURLs {
		fams, err := w.scrape(ctx, u)
		if err != nil {
			s.problems = append(s.problems, err.Error())
			continue
		}
		s.accepted += sum(fams["loudly_orders_accepted_total"], nil)
		for _, st := range []struct {
			status string
			to     *float64
		}{{"confirmed", &s.confirmed}, {"rejected", &s.rejected}, {"failed", &s.failed}} {
			*st.to += sum(fams["loudly_orders_settled_total"], map[string]string{"status": st.status})
		}
		s.unsettled = max(s.unsettled, sum(fams["loudly_orders_unsettled"], nil))
		s.oldest = max(s.oldest, time.Duration(sum(fams["loudly_orders_unsettled_oldest_age_seconds"], nil)*float64(time.Second)))
		// Every service that watches the dead letters reports the same count per consumer.
		for c, v := range byLabel(fams["loudly_deadletter_messages"], "consumer") {
			dead[c] = max(dead[c], v)
		}
		for c, v := range byLabel(fams["loudly_consumer_pending"], "consumer") {
			l := lag[c]
			l.name, l.pending = c, max(l.pending, v)
			lag[c] = l
		}
		for c, v := range byLabel(fams["loudly_consumer_ack_pending"], "consumer") {
			l := lag[c]
			l.name, l.ackPending = c, max(l.ackPending, v)
			lag[c] = l
		}
	}
	for _, v := range dead {
		s.deadLettered += v
	}
	for _, l := range lag {
		s.lag = append(s.lag, l)
	}
	slices.SortFunc(s.lag, func(a, b consumerLag) int {
		if c := cmp.Compare(b.pending+b.ackPending, a.pending+a.ackPending); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})

	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	fs, err := faults.List(fctx, w.js)
	cancel()
	if err != nil {
		s.problems = append(s.problems, "fault bucket: "+err.Error())
	}
	now := time.Now()
	for _, f := range fs {
		if f.Active(now) {
			s.faults = append(s.faults, f)
		}
	}

	if w.prom != nil {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := w.prom.Alerts(actx)
		cancel()
		if err != nil {
			s.problems = append(s.problems, "prometheus: "+err.Error())
		}
		for _, a := range res.Alerts {
			s.alerts = append(s.alerts, alertState{name: string(a.Labels[model.AlertNameLabel]), state: string(a.State),
				severity: string(a.Labels["severity"]), since: a.ActiveAt})
		}
		sortAlerts(s.alerts)
		s.alerts = slices.CompactFunc(s.alerts, func(a, b alertState) bool { return a.name == b.name && a.state == b.state })
	}
	return s
}

func (w *watcher) scrape(ctx context.Context, u string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	res, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(res.Body)
}

// sum adds the values of a family's series whose labels include match.
func sum(f *dto.MetricFamily, match map[string]string) float64 {
	var total float64
	for _, m := range f.GetMetric() {
		if matches(m, match) {
			total += value(m)
		}
	}
	return total
}

// byLabel adds a family's values per value of one label.
func byLabel(f *dto.MetricFamily, label string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out[l.GetValue()] += value(m)
			}
		}
	}
	return out
}

func matches(m *dto.Metric, match map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := match[l.GetName()]; ok && v == l.GetValue() {
			found++
		}
	}
	return found == len(match)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}

// sortAlerts puts the most severe first: firing before pending, then critical before
// warning (and before any other severity), then by name.
func sortAlerts(alerts []alertState) {
	rank := func(severity string) int {
		switch severity {
		case "critical":
			return 0
		case "warning":
			return 1
		}
		return 2
	}
	slices.SortFunc(alerts, func(a, b alertState) int {
		if a.state != b.state {
			return strings.Compare(a.state, b.state) // firing < pending
		}
		if d := rank(a.severity) - rank(b.severity); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
}

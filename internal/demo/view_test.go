package demo

import (
	"strings"
	"testing"
	"time"

	"loudly/pkg/faults"
)

// The view says what an operator needs at a glance: the rates between two snapshots, the
// reconciler's count, the lag, the active drill and the alerts, in the terminal view and
// in the plain line alike.
func TestFrame_ShowsRatesDrillAndAlerts(t *testing.T) {
	t0 := time.Now().Add(-10 * time.Second)
	prev := snapshot{at: t0, accepted: 100, confirmed: 90, rejected: 5, deadLettered: 2}
	cur := snapshot{at: t0.Add(5 * time.Second), accepted: 200, confirmed: 170, rejected: 10, failed: 5, deadLettered: 4,
		unsettled: 12, oldest: 95 * time.Second,
		lag:    []consumerLag{{name: "inventory", pending: 7, ackPending: 3}},
		faults: []faults.Fault{{Name: "silent-skip", Intensity: 0.2}},
		alerts: []alertState{{name: "LoudlyUnsettledOrders", state: "pending", since: time.Now().Add(-30 * time.Second)}}}
	f := frame{snap: cur, rates: rateBetween(prev, cur), window: 5 * time.Second, started: t0,
		where: State{OrderURL: "http://o", InventoryURL: "http://i", PrometheusURL: "http://p"}}

	line := f.line()
	for _, want := range []string{"accepted=20.0/s", "confirmed=16.0/s", "rejected=1.0/s", "failed=1.0/s", "dead_lettered=0.4/s",
		"settled_total=185", "unsettled=12", "oldest_unsettled=1m35s", "lag=10", "drill=silent-skip", "alerts=pending:LoudlyUnsettledOrders"} {
		if !strings.Contains(line, want) {
			t.Errorf("plain line lacks %q:\n%s", want, line)
		}
	}
	screen := f.screen()
	for _, want := range []string{"accepted 20.0/s", "12 orders pending past the settlement deadline, oldest 1m35s",
		"inventory 7 waiting, 3 in flight", "silent-skip 0.2 fraction", "pending LoudlyUnsettledOrders", "http://p/alerts"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	t.Logf("screen:\n%s", screen)

	f.where.PrometheusURL, f.note = "", "run make tools"
	if !strings.Contains(f.line(), "alerts=off") || !strings.Contains(f.screen(), "no Prometheus: run make tools") {
		t.Errorf("without Prometheus the view does not say so:\n%s\n%s", f.line(), f.screen())
	}
}

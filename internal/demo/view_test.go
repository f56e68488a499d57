package demo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"charm.land/lipgloss/v2"

	"loudly/alerts"
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
	screen := f.screen(0)
	for _, want := range []string{"accepted 20.0/s", "12 orders pending past the settlement deadline, oldest 1m35s",
		"inventory 7 waiting, 3 in flight", "silent-skip 0.2 fraction", "pending LoudlyUnsettledOrders", "http://p/alerts"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	t.Logf("screen:\n%s", screen)

	f.where.PrometheusURL, f.note = "", "run make tools"
	if !strings.Contains(f.line(), "alerts=off") || !strings.Contains(f.screen(0), "no Prometheus: run make tools") {
		t.Errorf("without Prometheus the view does not say so:\n%s\n%s", f.line(), f.screen(0))
	}
}

var escape = regexp.MustCompile("\x1b\\[[0-9;:]*m")

// Alerts are always readable whatever the terminal's width: every alert the rules can
// raise, all at once, fits an 80- and a 200-column terminal, each on its own line, whole,
// with no line wider than the terminal, the most severe first.
func TestFrame_AlertsFitTheTerminal(t *testing.T) {
	var as []alertState
	for i, r := range alerts.Rules(alerts.Production) {
		state := "pending"
		if i%2 == 0 {
			state = "firing"
		}
		as = append(as, alertState{name: r.Name, state: state, severity: r.Severity, since: time.Now().Add(-time.Duration(i) * time.Minute)})
	}
	sortAlerts(as)
	f := frame{snap: snapshot{at: time.Now(), alerts: as,
		faults: []faults.Fault{{Name: "silent-skip", Intensity: 0.2, Until: time.Now().Add(10 * time.Minute)}, {Name: "db-latency", Intensity: 0.5}},
		lag:    []consumerLag{{name: "inventory", pending: 7}, {name: "order-settlement", pending: 1}, {name: "order-deadletters"}}},
		started: time.Now(), window: 5 * time.Second,
		where: State{OrderURL: "http://127.0.0.1:8080", InventoryURL: "http://127.0.0.1:8081", PrometheusURL: "http://127.0.0.1:9090"}}

	for _, width := range []int{80, 200} {
		screen := f.screen(width)
		plain := escape.ReplaceAllString(screen, "")
		lines := strings.Split(plain, "\n")
		for _, l := range strings.Split(screen, "\n") {
			if w := lipgloss.Width(l); w > width {
				t.Errorf("%d columns: a line is %d wide: %q", width, w, escape.ReplaceAllString(l, ""))
			}
		}
		// Each alert on a line of its own, whole, in the watcher's order.
		last := -1
		for _, a := range as {
			at := -1
			for i, l := range lines {
				if strings.Contains(l, a.state+" "+a.name+" "+a.severity) {
					at = i
				}
			}
			if at < 0 {
				t.Errorf("%d columns: %s %s is not on a line of its own:\n%s", width, a.state, a.name, plain)
				continue
			}
			if at <= last {
				t.Errorf("%d columns: %s is not below the alert before it", width, a.name)
			}
			last = at
		}
		firing := 0
		for _, a := range as {
			if a.state == "firing" {
				firing++
			}
		}
		if want := fmt.Sprintf("alerts          %d firing, %d pending", firing, len(as)-firing); !strings.Contains(plain, want) {
			t.Errorf("%d columns: no count %q:\n%s", width, want, plain)
		}
		t.Logf("%d columns:\n%s", width, plain)
	}
}

// The most severe alert comes first: firing before pending, critical before warning.
func TestSortAlerts_MostSevereFirst(t *testing.T) {
	as := []alertState{
		{name: "B", state: "pending", severity: "critical"},
		{name: "A", state: "firing", severity: "warning"},
		{name: "Z", state: "firing", severity: "critical"},
		{name: "C", state: "pending", severity: "warning"},
	}
	sortAlerts(as)
	var got []string
	for _, a := range as {
		got = append(got, a.name)
	}
	if strings.Join(got, "") != "ZABC" {
		t.Errorf("order %v, want Z A B C", got)
	}
}

// brokenPipe is a stdout whose reader went away.
type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// The ending survives a closed stdout: the breakdown, the reason the demo failed and the
// summary line — last — go to the data directory's log, and to stderr when stdout is gone.
func TestReport_SummaryLastAndKept(t *testing.T) {
	out := "sent 100 orders\nchecked in 1s: 90 confirmed, 0 rejected, 0 failed, 10 not final\naccepted=100 lost=10 verified=false\n"
	reason := errors.New("load: lost=10: 10 of 100 accepted orders are not final")
	for _, tc := range []struct {
		name   string
		stdout io.Writer
		reason error
	}{
		{"to stdout", &bytes.Buffer{}, nil},
		{"stdout closed", brokenPipe{}, reason},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var stderr bytes.Buffer
			d := &demo{o: Options{Stdout: tc.stdout, Stderr: &stderr}, logDir: dir}
			f, err := d.logFile(logName)
			if err != nil {
				t.Fatal(err)
			}
			d.log = f
			d.report(out, tc.reason)
			d.closeFiles()
			logged, err := os.ReadFile(filepath.Join(dir, logName))
			if err != nil {
				t.Fatal(err)
			}
			shown := stderr.String()
			if b, ok := tc.stdout.(*bytes.Buffer); ok {
				shown = b.String()
				if stderr.Len() != 0 {
					t.Errorf("stderr %q, want nothing while stdout works", stderr.String())
				}
			}
			for where, text := range map[string]string{"log": string(logged), "terminal": shown} {
				lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
				if lines[len(lines)-1] != "accepted=100 lost=10 verified=false" || !strings.HasPrefix(text, "sent 100 orders\n") {
					t.Errorf("%s: the summary line is not last, or the breakdown is missing:\n%s", where, text)
				}
				if tc.reason != nil && lines[len(lines)-2] != "demo failed: "+tc.reason.Error() {
					t.Errorf("%s: the reason is not on the line before the summary:\n%s", where, text)
				}
			}
		})
	}
}

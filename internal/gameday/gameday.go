// Package gameday runs a game day: the drills of the catalogue one after another, in an
// order a seed repeats, scored by what the alerting saw — which expected alert fired and
// how long after the fault started, whether an alert that must stay quiet fired, and what
// was left unsettled once the system had time to recover.
//
// A Game talks to the world through three seams — a fault switch, Prometheus's HTTP API
// (the official client) and a clock — so its tests drive a whole game day in
// milliseconds; `loudly drill gameday` is the command that wires it to the real ones.
package gameday

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"loudly/pkg/faults"
	"loudly/services/drill"
)

const (
	// unsettledQuery is the reconciler's count of orders pending past the settlement
	// deadline, as Prometheus last scraped it.
	unsettledQuery = `max(loudly_orders_unsettled)`
	maxPoll        = 5 * time.Second
	minPoll        = 100 * time.Millisecond
)

// Schedule is the game: the drills in the order they run, and the time each takes.
type Schedule struct {
	Seed          uint64
	Each, Recover time.Duration
	Drills        []string
}

// NewSchedule fits as many drills as whole slots (each + recover) fit in duration. Every
// round of the catalog is a fresh shuffle from the seeded generator (PCG, so the same seed
// gives the same game on any machine and Go version), and a drill never follows itself
// across rounds.
func NewSchedule(seed uint64, duration, each, recovery time.Duration, catalog []drill.Spec) Schedule {
	s := Schedule{Seed: seed, Each: each, Recover: recovery}
	if each <= 0 || recovery < 0 || len(catalog) == 0 {
		return s
	}
	n := int(duration / (each + recovery))
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for len(s.Drills) < n {
		round := make([]string, len(catalog))
		for i, spec := range catalog {
			round[i] = spec.Name
		}
		rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
		if k := len(s.Drills); k > 0 && len(round) > 1 && round[0] == s.Drills[k-1] {
			round[0], round[1] = round[1], round[0]
		}
		s.Drills = append(s.Drills, round[:min(len(round), n-len(s.Drills))]...)
	}
	return s
}

// Faults starts and stops drill faults.
type Faults interface {
	Start(ctx context.Context, name string, d time.Duration) error
	Stop(ctx context.Context, name string) error
}

// Bucket is the fault bucket the services watch: a drill starts at its default
// intensity.
func Bucket(js jetstream.JetStream) Faults { return bucket{js} }

type bucket struct{ js jetstream.JetStream }

func (b bucket) Start(ctx context.Context, name string, d time.Duration) error {
	_, err := drill.Start(ctx, b.js, name, "", 0, d)
	return err
}

func (b bucket) Stop(ctx context.Context, name string) error { return faults.Stop(ctx, b.js, name) }

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Game plays a schedule against the world.
type Game struct {
	Faults     Faults
	Prometheus promv1.API
	Now        func() time.Time                                 // default time.Now
	Sleep      func(ctx context.Context, d time.Duration) error // default: wait d or until ctx ends
	Progress   io.Writer                                        // one line per event, for the observer; never the scorecard
}

// Scorecard is the result of a game day.
type Scorecard struct {
	Seed        uint64       `json:"seed"`
	Each        string       `json:"each"`
	Recover     string       `json:"recover"`
	Planned     []string     `json:"planned"`
	Drills      []DrillScore `json:"drills"`
	Warnings    []string     `json:"warnings,omitempty"`
	Interrupted bool         `json:"interrupted"`
	Error       string       `json:"error,omitempty"`
	Passed      bool         `json:"passed"` // every drill ran, was detected, and no quiet alert fired
}

// DrillScore is one drill's line of the scorecard.
type DrillScore struct {
	Drill   string    `json:"drill"`
	Started time.Time `json:"started"`
	Stopped time.Time `json:"stopped,omitzero"` // when the fault was switched off

	Expected []string `json:"expected_alerts"`
	// Fired is when each expected alert was first seen firing.
	Fired        map[string]time.Time `json:"fired,omitempty"`
	DetectedBy   string               `json:"detected_by,omitempty"`
	TimeToDetect *float64             `json:"time_to_detect_seconds"` // null: not detected

	Quiet         []string             `json:"quiet_alerts,omitempty"`
	QuietViolated map[string]time.Time `json:"quiet_violated,omitempty"`
	// CarriedOver are expected or quiet alerts already pending or firing when the drill
	// started (the tail of an earlier drill): they count for nothing until they resolve.
	CarriedOver []string `json:"carried_over,omitempty"`

	// Orders pending past the settlement deadline, as the reconciler reports them, when the
	// drill started and after the recovery pause; null when Prometheus had no value.
	UnsettledBefore *float64 `json:"unsettled_before"`
	UnsettledAfter  *float64 `json:"unsettled_after_recovery"`
	// LossExpected marks a drill whose loss is its lesson (silent-skip): the unsettled
	// orders after recovery are the events it acked and never applied.
	LossExpected bool   `json:"loss_expected,omitempty"`
	Unsettled    string `json:"unsettled_verdict"`

	PrometheusErrors int  `json:"prometheus_errors,omitempty"`
	Interrupted      bool `json:"interrupted,omitempty"`
}

// Detected reports whether an expected alert fired.
func (d DrillScore) Detected() bool { return d.DetectedBy != "" }

// Passed reports whether the drill was detected, kept its quiet alerts quiet and ran to
// its end.
func (d DrillScore) Passed() bool {
	return d.Detected() && len(d.QuietViolated) == 0 && !d.Interrupted
}

// Run plays the schedule and returns the scorecard; a cancelled ctx (Ctrl-C) stops the
// current fault and ends the game with the drills so far.
func (g *Game) Run(ctx context.Context, plan Schedule) Scorecard {
	if g.Now == nil {
		g.Now = time.Now
	}
	if g.Sleep == nil {
		g.Sleep = sleep
	}
	card := Scorecard{Seed: plan.Seed, Each: plan.Each.String(), Recover: plan.Recover.String(), Planned: plan.Drills}
	card.Warnings = g.warnings(ctx, plan)
	g.logf("game day: seed %d, %d drills of %s + %s recovery: %s", plan.Seed, len(plan.Drills), plan.Each, plan.Recover,
		strings.Join(plan.Drills, ", "))
	for _, w := range card.Warnings {
		g.logf("warning: %s", w)
	}
	for _, name := range plan.Drills {
		spec, _ := drill.Lookup(name)
		d, err := g.drill(ctx, spec, plan.Each, plan.Recover)
		card.Drills = append(card.Drills, d)
		if err != nil {
			if ctx.Err() != nil {
				card.Interrupted = true
				g.logf("interrupted during %s: fault stopped", name)
			} else {
				card.Error = err.Error()
			}
			break
		}
	}
	card.Passed = !card.Interrupted && card.Error == "" && len(card.Drills) == len(plan.Drills)
	for _, d := range card.Drills {
		card.Passed = card.Passed && d.Passed()
	}
	return card
}

// warnings names drills the game cannot score: an expected alert Prometheus does not
// know, or a drill whose every alert holds longer than the drill and its recovery last.
func (g *Game) warnings(ctx context.Context, plan Schedule) []string {
	rules, err := g.alertRules(ctx)
	if err != nil {
		return []string{"cannot read Prometheus's alerting rules (" + err.Error() + "): hold times not checked"}
	}
	var out []string
	seen := map[string]bool{}
	for _, name := range plan.Drills {
		if seen[name] {
			continue
		}
		seen[name] = true
		spec, _ := drill.Lookup(name)
		var missing []string
		fastest := time.Duration(-1)
		for _, a := range spec.Alerts {
			hold, ok := rules[a]
			if !ok {
				missing = append(missing, a)
				continue
			}
			if fastest < 0 || hold < fastest {
				fastest = hold
			}
		}
		if len(missing) > 0 {
			out = append(out, fmt.Sprintf("%s: Prometheus has no rule %s", name, strings.Join(missing, ", ")))
		}
		if fastest >= plan.Each+plan.Recover {
			out = append(out, fmt.Sprintf("%s: its quickest alert holds %s before firing, longer than -each + -recover (%s): it cannot be detected",
				name, fastest, plan.Each+plan.Recover))
		}
	}
	return out
}

// drill runs one drill: start the fault (with -for each, so it ends by itself should
// this process die), watch the alerts until each is over, stop the fault, keep watching
// through the recovery pause, then ask what is still unsettled. An error ends the game:
// the fault could not be started, or ctx ended (then the fault is stopped first).
func (g *Game) drill(ctx context.Context, spec drill.Spec, each, recovery time.Duration) (DrillScore, error) {
	d := DrillScore{Drill: spec.Name, Expected: spec.Alerts, Quiet: spec.Quiet,
		Fired: map[string]time.Time{}, QuietViolated: map[string]time.Time{}}
	d.UnsettledBefore = g.unsettled(ctx, &d)

	// Alerts already active are an earlier drill's tail, not this drill's detection. An
	// alert instance is its label set; LabelSet.String sorts the names, so it is a key.
	watched := map[string]bool{}
	for _, a := range slices.Concat(spec.Alerts, spec.Quiet) {
		watched[a] = true
	}
	carried := map[string]bool{}
	if alerts, err := g.Prometheus.Alerts(ctx); err != nil {
		d.PrometheusErrors++
	} else {
		for _, a := range alerts.Alerts {
			if name := string(a.Labels[model.AlertNameLabel]); watched[name] {
				carried[a.Labels.String()] = true
				if !slices.Contains(d.CarriedOver, name) {
					d.CarriedOver = append(d.CarriedOver, name)
				}
			}
		}
	}

	d.Started = g.Now()
	if err := g.Faults.Start(ctx, spec.Name, each); err != nil {
		d.Interrupted = ctx.Err() != nil
		d.finish()
		if !d.Interrupted {
			d.Unsettled = "not measured (the fault did not start)"
		}
		return d, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	g.logf("start %s for %s; expected: %s", spec.Name, each, strings.Join(spec.Alerts, ", "))
	stopAt, endAt := d.Started.Add(each), d.Started.Add(each+recovery)
	poll := min(maxPoll, max(minPoll, each/10))
	for {
		g.observe(ctx, &d, carried)
		now := g.Now()
		if d.Stopped.IsZero() && !now.Before(stopAt) {
			if err := g.Faults.Stop(ctx, spec.Name); err != nil {
				// It ends by itself at stopAt anyway (-for); say so and carry on.
				g.logf("stop %s: %v (it expires by itself)", spec.Name, err)
			}
			d.Stopped = now
			g.logf("stop %s; recovering for %s", spec.Name, recovery)
		}
		if !now.Before(endAt) {
			break
		}
		next := endAt
		if d.Stopped.IsZero() {
			next = stopAt
		}
		if err := g.Sleep(ctx, min(poll, next.Sub(now))); err != nil {
			d.Interrupted = true
			if d.Stopped.IsZero() {
				stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				if err := g.Faults.Stop(stopCtx, spec.Name); err != nil {
					g.logf("stop %s: %v (it expires by itself at %s)", spec.Name, err, stopAt.Format(time.TimeOnly))
				}
				cancel()
				d.Stopped = g.Now()
			}
			d.finish()
			return d, err
		}
	}
	d.UnsettledAfter = g.unsettled(ctx, &d)
	d.finish()
	if d.Detected() {
		g.logf("%s: detected by %s after %s; unsettled after recovery: %s", spec.Name, d.DetectedBy, seconds(*d.TimeToDetect), d.Unsettled)
	} else {
		g.logf("%s: not detected; unsettled after recovery: %s", spec.Name, d.Unsettled)
	}
	return d, nil
}

// observe polls the alerts once and records the first firing of each expected and quiet
// alert that was not carried over from before the drill.
func (g *Game) observe(ctx context.Context, d *DrillScore, carried map[string]bool) {
	res, err := g.Prometheus.Alerts(ctx)
	if err != nil {
		d.PrometheusErrors++
		return
	}
	alerts := res.Alerts
	now := g.Now()
	present := map[string]bool{}
	for _, a := range alerts {
		present[a.Labels.String()] = true
	}
	for k := range carried {
		if !present[k] {
			delete(carried, k) // resolved: if it comes back, it is this drill's
		}
	}
	for _, a := range alerts {
		name := string(a.Labels[model.AlertNameLabel])
		if a.State != promv1.AlertStateFiring || carried[a.Labels.String()] {
			continue
		}
		if slices.Contains(d.Expected, name) {
			if _, ok := d.Fired[name]; !ok {
				d.Fired[name] = now
				g.logf("%s: %s firing after %s", d.Drill, name, now.Sub(d.Started).Round(time.Second))
			}
		}
		if slices.Contains(d.Quiet, name) {
			if _, ok := d.QuietViolated[name]; !ok {
				d.QuietViolated[name] = now
				g.logf("%s: %s FIRED, and must stay quiet in this drill", d.Drill, name)
			}
		}
	}
}

func (g *Game) unsettled(ctx context.Context, d *DrillScore) *float64 {
	v, ok, err := g.query(ctx, unsettledQuery)
	if err != nil {
		d.PrometheusErrors++
		return nil
	}
	if !ok {
		return nil
	}
	return &v
}

// finish derives the verdicts from the observations.
func (d *DrillScore) finish() {
	for _, a := range d.Expected { // catalog order breaks a tie within one poll
		t, ok := d.Fired[a]
		if ok && (d.DetectedBy == "" || t.Before(d.Fired[d.DetectedBy])) {
			d.DetectedBy = a
		}
	}
	if d.Detected() {
		s := d.Fired[d.DetectedBy].Sub(d.Started).Seconds()
		d.TimeToDetect = &s
	}
	d.LossExpected = d.Drill == drill.SilentSkip
	d.Unsettled = d.unsettledVerdict()
	if len(d.Fired) == 0 {
		d.Fired = nil
	}
	if len(d.QuietViolated) == 0 {
		d.QuietViolated = nil
	}
}

func (d DrillScore) unsettledVerdict() string {
	switch {
	case d.Interrupted:
		return "not measured (interrupted)"
	case d.UnsettledAfter == nil:
		return "unknown (no loudly_orders_unsettled in Prometheus)"
	}
	n := *d.UnsettledAfter
	switch {
	case d.LossExpected && n > 0:
		return fmt.Sprintf("%g: expected, the orders the skip acked, as the reconciler reports them (recover: docs/drills/silent-skip.md)", n)
	case n == 0:
		return "0"
	case d.UnsettledBefore != nil && n <= *d.UnsettledBefore:
		return fmt.Sprintf("%g, carried over (%g at the start)", n, *d.UnsettledBefore)
	case d.UnsettledBefore != nil && *d.UnsettledBefore > 0:
		return fmt.Sprintf("%g STUCK (%g at the start)", n, *d.UnsettledBefore)
	}
	return fmt.Sprintf("%g STUCK", n)
}

func (g *Game) logf(format string, args ...any) {
	if g.Progress != nil {
		fmt.Fprintf(g.Progress, "%s %s\n", g.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
	}
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Second)
}

// Print writes the scorecard as a table and a verdict.
func (c Scorecard) Print(w io.Writer) {
	fmt.Fprintf(w, "Game day, seed %d: %d of %d drills (%s each, %s recovery)\n\n", c.Seed, len(c.Drills), len(c.Planned), c.Each, c.Recover)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DRILL\tSTARTED\tDETECTED\tQUIET ALERTS\tUNSETTLED AFTER RECOVERY")
	for _, d := range c.Drills {
		detected := "not detected"
		if d.Detected() {
			detected = fmt.Sprintf("%s after %s", d.DetectedBy, seconds(*d.TimeToDetect))
		} else if d.Interrupted {
			detected = "not detected (interrupted)"
		}
		quiet := "-"
		if len(d.Quiet) > 0 {
			quiet = "OK"
		}
		if len(d.QuietViolated) > 0 {
			var names []string
			for n := range d.QuietViolated {
				names = append(names, n)
			}
			sort.Strings(names)
			quiet = "VIOLATED: " + strings.Join(names, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Drill, d.Started.Format(time.TimeOnly), detected, quiet, d.Unsettled)
	}
	tw.Flush()
	var notes []string
	for _, d := range c.Drills {
		if len(d.CarriedOver) > 0 {
			notes = append(notes, fmt.Sprintf("%s: already active at its start, not counted: %s", d.Drill, strings.Join(d.CarriedOver, ", ")))
		}
		if d.PrometheusErrors > 0 {
			notes = append(notes, fmt.Sprintf("%s: %d Prometheus requests failed", d.Drill, d.PrometheusErrors))
		}
	}
	notes = append(notes, c.Warnings...)
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	}
	detected := 0
	for _, d := range c.Drills {
		if d.Detected() {
			detected++
		}
	}
	verdict := "PASS"
	switch {
	case c.Interrupted:
		verdict = "INTERRUPTED"
	case c.Error != "":
		verdict = "ERROR: " + c.Error
	case !c.Passed:
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n%d of %d drills detected; %s\n", detected, len(c.Drills), verdict)
}

// alertRules returns every alerting rule's name and its hold time ("for").
func (g *Game) alertRules(ctx context.Context) (map[string]time.Duration, error) {
	res, err := g.Prometheus.Rules(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	for _, grp := range res.Groups {
		for _, r := range grp.Rules {
			if a, ok := r.(promv1.AlertingRule); ok {
				out[a.Name] = time.Duration(a.Duration * float64(time.Second))
			}
		}
	}
	return out, nil
}

// query returns the first value of an instant query; ok is false for an empty result.
func (g *Game) query(ctx context.Context, q string) (v float64, ok bool, err error) {
	res, _, err := g.Prometheus.Query(ctx, q, time.Time{})
	if err != nil {
		return 0, false, err
	}
	vec, isVector := res.(model.Vector)
	if !isVector {
		return 0, false, fmt.Errorf("query %s: result type %s, want vector", q, res.Type())
	}
	if len(vec) == 0 {
		return 0, false, nil
	}
	return float64(vec[0].Value), true, nil
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/env"
	"loudly/pkg/faults"
	"loudly/services/drill"
)

// A game day runs the drills of the catalog one after another, in an order the seed
// repeats, and scores what the alerting saw: which expected alert fired and how long after
// the fault started, whether an alert that must stay quiet fired, and what was left
// unsettled once the system had time to recover. The core (gameday.run) talks to the
// world through three small seams — a fault switch, a Prometheus client and a clock — so
// its tests drive a whole game day in milliseconds.

const (
	defaultPrometheus = "http://127.0.0.1:9090"
	// unsettledQuery is the reconciler's count of orders pending past the settlement
	// deadline, as Prometheus last scraped it.
	unsettledQuery = `max(loudly_orders_unsettled)`
	maxPoll        = 5 * time.Second
	minPoll        = 100 * time.Millisecond
)

func drillGameday(ctx context.Context, c *cli, self command, args []string) int {
	l := c.newLeaf(self, "Starts the catalog's drills one after another, in a random order that -seed repeats, each\n"+
		"for -each (with -for, so it ends by itself even if this command dies), then waits -recover.\n"+
		"Meanwhile it polls Prometheus's alerts and prints a scorecard: per drill, which expected\n"+
		"alert fired and how long after the start, whether an alert that must stay quiet fired, and\n"+
		"the orders still unsettled after the recovery pause. Ctrl-C stops the current fault and\n"+
		"prints the scorecard so far.\n\n"+
		"Exit 0 when every drill was detected and no quiet alert fired, 1 otherwise (or when\n"+
		"interrupted), 2 for a bad command line.")
	seed := l.fs.Uint64("seed", 0, "`N` seeds the drill order; the same seed gives the same game (default: random, printed)")
	duration := l.fs.Duration("duration", 0, "length of the game day, `D` (e.g. 90m); required")
	each := l.fs.Duration("each", 8*time.Minute, "how long each drill's fault stays on, `D` (long enough for the production alerts' hold times)")
	recovery := l.fs.Duration("recover", 4*time.Minute, "pause after each drill before the next, `D`, for recovery and the loss check")
	promFlag := l.fs.String("prometheus", "", "Prometheus base `URL` (default: $PROMETHEUS_URL, or "+defaultPrometheus+")")
	asJSON := l.fs.Bool("json", false, "print the scorecard as one JSON document")
	if _, code, ok := l.parse(c, args, 0, 0); !ok {
		return code
	}
	seedSet := false
	l.fs.Visit(func(f *flag.Flag) {
		if f.Name == "seed" {
			seedSet = true
		}
	})
	switch {
	case *duration <= 0:
		return l.usageError(c, "-duration is required and must be positive")
	case *each <= 0:
		return l.usageError(c, "-each must be positive")
	case *recovery < 0:
		return l.usageError(c, "-recover must not be negative")
	case *duration < *each+*recovery:
		return l.usageError(c, "-duration %s does not fit one drill (-each %s + -recover %s)", *duration, *each, *recovery)
	}
	promURL, err := prometheusURL(c, *promFlag)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", l.fs.Name(), err)
		return exitUsage
	}
	if !seedSet {
		*seed = rand.Uint64()
	}
	plan := newSchedule(*seed, *duration, *each, *recovery, drill.Catalog)

	natsURL, err := l.natsURL(c)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", l.fs.Name(), err)
		return exitUsage
	}
	// Unlike the one-shot commands, a game day lasts hours: ride out a broker blip rather
	// than abort, but fail at once when the broker is not there to begin with.
	nc, err := nats.Connect(natsURL, nats.Name("loudly-gameday"), nats.Timeout(5*time.Second),
		nats.MaxReconnects(120), nats.ReconnectWait(time.Second))
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: connect to NATS at %s: %v\n", l.fs.Name(), redact(natsURL), err)
		return exitFailed
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return l.fail(c, err)
	}
	prom := &promClient{base: strings.TrimRight(promURL, "/"), hc: &http.Client{Timeout: 10 * time.Second}}
	if _, err := prom.Alerts(ctx); err != nil {
		return l.fail(c, fmt.Errorf("prometheus at %s: %w", redact(promURL), err))
	}
	if active, err := faults.List(ctx, js); err != nil {
		return l.fail(c, err)
	} else if len(active) > 0 {
		var names []string
		for _, f := range active {
			names = append(names, f.Name)
		}
		fmt.Fprintf(c.stderr, "warning: faults already active, not part of the game: %s\n", strings.Join(names, ", "))
	}
	g := &gameday{
		faults:   jsFaults{js: js},
		prom:     prom,
		now:      time.Now,
		sleep:    sleepCtx,
		progress: c.stderr,
	}
	card := g.run(ctx, plan)
	if *asJSON {
		if code := l.writeJSON(c, card); code != exitOK {
			return code
		}
	} else {
		card.print(c.stdout)
	}
	if card.Error != "" {
		fmt.Fprintf(c.stderr, "%s: %s\n", l.fs.Name(), card.Error)
	}
	if !card.Passed {
		return exitFailed
	}
	return exitOK
}

// prometheusURL is -prometheus if given, else PROMETHEUS_URL, else the default, checked
// like every other URL the tools take.
func prometheusURL(c *cli, flagV string) (string, error) {
	name, v := "PROMETHEUS_URL", flagV
	if v != "" {
		name = "-prometheus"
	} else {
		v = c.getenv("PROMETHEUS_URL")
	}
	r := env.New(func(string) string { return v })
	u := r.URL(name, defaultPrometheus, "http", "https")
	return u, r.Err()
}

// schedule is the game: the drills in the order they run, and the time each takes.
type schedule struct {
	Seed          uint64
	Each, Recover time.Duration
	Drills        []string
}

// newSchedule fits as many drills as whole slots (each + recover) fit in duration. Every
// round of the catalog is a fresh shuffle from the seeded generator (PCG, so the same seed
// gives the same game on any machine and Go version), and a drill never follows itself
// across rounds.
func newSchedule(seed uint64, duration, each, recovery time.Duration, catalog []drill.Spec) schedule {
	s := schedule{Seed: seed, Each: each, Recover: recovery}
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

// faultSwitch starts and stops drill faults.
type faultSwitch interface {
	Start(ctx context.Context, name string, d time.Duration) error
	Stop(ctx context.Context, name string) error
}

// jsFaults is the fault bucket the services watch.
type jsFaults struct{ js jetstream.JetStream }

func (f jsFaults) Start(ctx context.Context, name string, d time.Duration) error {
	_, err := drill.Start(ctx, f.js, name, 0, d)
	return err
}

func (f jsFaults) Stop(ctx context.Context, name string) error { return faults.Stop(ctx, f.js, name) }

// prometheusAPI is what a game day asks Prometheus.
type prometheusAPI interface {
	// Alerts returns the pending and firing alerts.
	Alerts(ctx context.Context) ([]promAlert, error)
	// Query returns the first value of an instant query; ok is false for an empty result.
	Query(ctx context.Context, q string) (v float64, ok bool, err error)
	// AlertRules returns every alerting rule's name and its hold time ("for").
	AlertRules(ctx context.Context) (map[string]time.Duration, error)
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// key identifies one alert instance: its name and labels.
func (a promAlert) key() string {
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, a.Labels[k])
	}
	return b.String()
}

// promClient is Prometheus's HTTP API.
type promClient struct {
	base string
	hc   *http.Client
}

func (p *promClient) get(ctx context.Context, path string, params url.Values, out any) error {
	u := p.base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	res, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 32<<20)).Decode(&body); err != nil {
		return fmt.Errorf("%s: HTTP %d, not the API's JSON: %w", path, res.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: HTTP %d: %s", path, res.StatusCode, body.Error)
	}
	return json.Unmarshal(body.Data, out)
}

func (p *promClient) Alerts(ctx context.Context) ([]promAlert, error) {
	var data struct {
		Alerts []promAlert `json:"alerts"`
	}
	err := p.get(ctx, "/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

func (p *promClient) Query(ctx context.Context, q string) (float64, bool, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if err := p.get(ctx, "/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return 0, false, err
	}
	if data.ResultType != "vector" {
		return 0, false, fmt.Errorf("query %s: result type %q, want vector", q, data.ResultType)
	}
	if len(data.Result) == 0 {
		return 0, false, nil
	}
	s, _ := data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, fmt.Errorf("query %s: value %v: %w", q, data.Result[0].Value[1], err)
	}
	return v, true, nil
}

func (p *promClient) AlertRules(ctx context.Context) (map[string]time.Duration, error) {
	var data struct {
		Groups []struct {
			Rules []struct {
				Name     string  `json:"name"`
				Type     string  `json:"type"`
				Duration float64 `json:"duration"` // seconds
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(ctx, "/api/v1/rules", url.Values{"type": {"alert"}}, &data); err != nil {
		return nil, err
	}
	out := map[string]time.Duration{}
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			if r.Type == "" || r.Type == "alerting" {
				out[r.Name] = time.Duration(r.Duration * float64(time.Second))
			}
		}
	}
	return out, nil
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// gameday runs a schedule.
type gameday struct {
	faults   faultSwitch
	prom     prometheusAPI
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	progress io.Writer // one line per event, for the observer; never the scorecard
}

// scorecard is the result of a game day.
type scorecard struct {
	Seed        uint64       `json:"seed"`
	Each        string       `json:"each"`
	Recover     string       `json:"recover"`
	Planned     []string     `json:"planned"`
	Drills      []drillScore `json:"drills"`
	Warnings    []string     `json:"warnings,omitempty"`
	Interrupted bool         `json:"interrupted"`
	Error       string       `json:"error,omitempty"`
	Passed      bool         `json:"passed"` // every drill ran, was detected, and no quiet alert fired
}

// drillScore is one drill's line of the scorecard.
type drillScore struct {
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

func (d drillScore) detected() bool { return d.DetectedBy != "" }

func (d drillScore) passed() bool {
	return d.detected() && len(d.QuietViolated) == 0 && !d.Interrupted
}

// run plays the schedule and returns the scorecard; a cancelled ctx (Ctrl-C) stops the
// current fault and ends the game with the drills so far.
func (g *gameday) run(ctx context.Context, plan schedule) scorecard {
	card := scorecard{Seed: plan.Seed, Each: plan.Each.String(), Recover: plan.Recover.String(), Planned: plan.Drills}
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
		card.Passed = card.Passed && d.passed()
	}
	return card
}

// warnings names drills the game cannot score: an expected alert Prometheus does not
// know, or a drill whose every alert holds longer than the drill and its recovery last.
func (g *gameday) warnings(ctx context.Context, plan schedule) []string {
	rules, err := g.prom.AlertRules(ctx)
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
func (g *gameday) drill(ctx context.Context, spec drill.Spec, each, recovery time.Duration) (drillScore, error) {
	d := drillScore{Drill: spec.Name, Expected: spec.Alerts, Quiet: spec.Quiet,
		Fired: map[string]time.Time{}, QuietViolated: map[string]time.Time{}}
	d.UnsettledBefore = g.unsettled(ctx, &d)

	// Alerts already active are an earlier drill's tail, not this drill's detection.
	watched := map[string]bool{}
	for _, a := range slices.Concat(spec.Alerts, spec.Quiet) {
		watched[a] = true
	}
	carried := map[string]bool{}
	if alerts, err := g.prom.Alerts(ctx); err != nil {
		d.PrometheusErrors++
	} else {
		for _, a := range alerts {
			if name := a.Labels["alertname"]; watched[name] {
				carried[a.key()] = true
				if !slices.Contains(d.CarriedOver, name) {
					d.CarriedOver = append(d.CarriedOver, name)
				}
			}
		}
	}

	d.Started = g.now()
	if err := g.faults.Start(ctx, spec.Name, each); err != nil {
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
		now := g.now()
		if d.Stopped.IsZero() && !now.Before(stopAt) {
			if err := g.faults.Stop(ctx, spec.Name); err != nil {
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
		if err := g.sleep(ctx, min(poll, next.Sub(now))); err != nil {
			d.Interrupted = true
			if d.Stopped.IsZero() {
				stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				if err := g.faults.Stop(stopCtx, spec.Name); err != nil {
					g.logf("stop %s: %v (it expires by itself at %s)", spec.Name, err, stopAt.Format(time.TimeOnly))
				}
				cancel()
				d.Stopped = g.now()
			}
			d.finish()
			return d, err
		}
	}
	d.UnsettledAfter = g.unsettled(ctx, &d)
	d.finish()
	if d.detected() {
		g.logf("%s: detected by %s after %s; unsettled after recovery: %s", spec.Name, d.DetectedBy, seconds(*d.TimeToDetect), d.Unsettled)
	} else {
		g.logf("%s: not detected; unsettled after recovery: %s", spec.Name, d.Unsettled)
	}
	return d, nil
}

// observe polls the alerts once and records the first firing of each expected and quiet
// alert that was not carried over from before the drill.
func (g *gameday) observe(ctx context.Context, d *drillScore, carried map[string]bool) {
	alerts, err := g.prom.Alerts(ctx)
	if err != nil {
		d.PrometheusErrors++
		return
	}
	now := g.now()
	present := map[string]bool{}
	for _, a := range alerts {
		present[a.key()] = true
	}
	for k := range carried {
		if !present[k] {
			delete(carried, k) // resolved: if it comes back, it is this drill's
		}
	}
	for _, a := range alerts {
		name := a.Labels["alertname"]
		if a.State != "firing" || carried[a.key()] {
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

func (g *gameday) unsettled(ctx context.Context, d *drillScore) *float64 {
	v, ok, err := g.prom.Query(ctx, unsettledQuery)
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
func (d *drillScore) finish() {
	for _, a := range d.Expected { // catalog order breaks a tie within one poll
		t, ok := d.Fired[a]
		if ok && (d.DetectedBy == "" || t.Before(d.Fired[d.DetectedBy])) {
			d.DetectedBy = a
		}
	}
	if d.detected() {
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

func (d drillScore) unsettledVerdict() string {
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

func (g *gameday) logf(format string, args ...any) {
	if g.progress != nil {
		fmt.Fprintf(g.progress, "%s %s\n", g.now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
	}
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Second)
}

// print writes the scorecard as a table and a verdict.
func (c scorecard) print(w io.Writer) {
	fmt.Fprintf(w, "Game day, seed %d: %d of %d drills (%s each, %s recovery)\n\n", c.Seed, len(c.Drills), len(c.Planned), c.Each, c.Recover)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DRILL\tSTARTED\tDETECTED\tQUIET ALERTS\tUNSETTLED AFTER RECOVERY")
	for _, d := range c.Drills {
		detected := "not detected"
		if d.detected() {
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
		if d.detected() {
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

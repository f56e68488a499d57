package demo

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"loudly/services/drill"
)

// rates are per-second business throughputs between two snapshots.
type rates struct {
	accepted, confirmed, rejected, failed, deadLettered float64
}

func rateBetween(prev, cur snapshot) rates {
	dt := cur.at.Sub(prev.at).Seconds()
	if dt <= 0 || prev.at.IsZero() {
		return rates{}
	}
	per := func(a, b float64) float64 { return max(b-a, 0) / dt }
	return rates{
		accepted: per(prev.accepted, cur.accepted), confirmed: per(prev.confirmed, cur.confirmed),
		rejected: per(prev.rejected, cur.rejected), failed: per(prev.failed, cur.failed),
		deadLettered: per(prev.deadLettered, cur.deadLettered),
	}
}

// frame is one refresh of the view: the latest snapshot, the rates over the last few
// seconds, and where things are.
type frame struct {
	snap    snapshot
	rates   rates
	window  time.Duration // what the rates are over
	started time.Time
	where   State
	note    string // how to get Prometheus, when running without it
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func n0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func (f frame) lagTotal() float64 {
	var n float64
	for _, l := range f.snap.lag {
		n += l.pending + l.ackPending
	}
	return n
}

func (f frame) drills() string {
	if len(f.snap.faults) == 0 {
		return "none"
	}
	var parts []string
	for _, x := range f.snap.faults {
		spec, _ := drill.Lookup(x.Name)
		p := fmt.Sprintf("%s %g %s", x.Name, x.Intensity, spec.Unit)
		if !x.Until.IsZero() {
			p += " (ends in " + time.Until(x.Until).Round(time.Second).String() + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// alertList is the alerts as the terminal view shows them: a count, then one alert a line,
// most severe first (the watcher's order: firing before pending, critical before warning).
func (f frame) alertList(style func(state, s string) string) []string {
	if f.where.PrometheusURL == "" {
		return []string{"no Prometheus: " + f.note}
	}
	if len(f.snap.alerts) == 0 {
		return []string{"none pending or firing"}
	}
	firing := 0
	for _, a := range f.snap.alerts {
		if a.state == "firing" {
			firing++
		}
	}
	out := []string{fmt.Sprintf("%d firing, %d pending", firing, len(f.snap.alerts)-firing)}
	for _, a := range f.snap.alerts {
		text := a.state + " " + a.name
		if a.severity != "" {
			text += " " + a.severity
		}
		out = append(out, style(a.state, text+" ("+time.Since(a.since).Round(time.Second).String()+")"))
	}
	return out
}

// line is the plain view: one line per refresh, for output that is not a terminal.
func (f frame) line() string {
	s, r := f.snap, f.rates
	var alerts []string
	for _, a := range s.alerts {
		alerts = append(alerts, a.state+":"+a.name)
	}
	al := strings.Join(alerts, ",")
	if al == "" {
		al = "none"
	}
	if f.where.PrometheusURL == "" {
		al = "off"
	}
	var drills []string
	for _, x := range s.faults {
		drills = append(drills, x.Name)
	}
	dr := strings.Join(drills, ",")
	if dr == "" {
		dr = "none"
	}
	line := fmt.Sprintf("demo %s: accepted=%s/s confirmed=%s/s rejected=%s/s failed=%s/s dead_lettered=%s/s"+
		" settled_total=%s unsettled=%s oldest_unsettled=%s lag=%s drill=%s alerts=%s",
		time.Since(f.started).Round(time.Second), f1(r.accepted), f1(r.confirmed), f1(r.rejected), f1(r.failed), f1(r.deadLettered),
		n0(s.confirmed+s.rejected+s.failed), n0(s.unsettled), s.oldest.Round(time.Second), n0(f.lagTotal()), dr, al)
	if len(s.problems) > 0 {
		line += " problems=" + strconv.Quote(strings.Join(s.problems, "; "))
	}
	return line
}

var (
	titleStyle  = lipgloss.NewStyle().Bold(true)
	labelStyle  = lipgloss.NewStyle().Faint(true).Width(labelWidth)
	firingStyle = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Red)
	pendStyle   = lipgloss.NewStyle().Foreground(lipgloss.Yellow)
	drillStyle  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Magenta)
)

// labelWidth is the width of the terminal view's labels, the column its values start at.
const labelWidth = 16

// screen is the terminal view for a terminal width columns wide (0: unknown, nothing is
// wrapped). A value longer than the room beside its label wraps onto the next lines,
// indented under it: nothing is cut at the terminal's edge.
func (f frame) screen(width int) string {
	s, r := f.snap, f.rates
	var b strings.Builder
	indent := strings.Repeat(" ", labelWidth)
	row := func(label, value string) {
		if width > labelWidth+10 {
			value = lipgloss.Wrap(value, width-labelWidth, " ,")
		}
		value = strings.ReplaceAll(value, "\n", "\n"+indent)
		b.WriteString(labelStyle.Render(label) + value + "\n")
	}
	title := titleStyle.Render("loudly demo") + fmt.Sprintf("  up %s  ·  Ctrl-C stops it, verifies every order and prints the summary",
		time.Since(f.started).Round(time.Second))
	if width > labelWidth+10 {
		title = lipgloss.Wrap(title, width, " ")
	}
	b.WriteString(title + "\n\n")
	row("throughput", fmt.Sprintf("accepted %s/s  confirmed %s/s  rejected %s/s  failed %s/s  dead-lettered %s/s  (last %s)",
		f1(r.accepted), f1(r.confirmed), f1(r.rejected), f1(r.failed), f1(r.deadLettered), f.window.Round(time.Second)))
	row("since start", fmt.Sprintf("accepted %s  confirmed %s  rejected %s  failed %s  dead letters %s",
		n0(s.accepted), n0(s.confirmed), n0(s.rejected), n0(s.failed), n0(s.deadLettered)))
	unsettled := "0 orders pending past the settlement deadline"
	if s.unsettled > 0 {
		unsettled = firingStyle.Render(fmt.Sprintf("%s orders pending past the settlement deadline, oldest %s", n0(s.unsettled), s.oldest.Round(time.Second)))
	}
	row("reconciler", unsettled)
	var lag []string
	for _, l := range s.lag {
		lag = append(lag, fmt.Sprintf("%s %s waiting, %s in flight", l.name, n0(l.pending), n0(l.ackPending)))
	}
	if len(lag) == 0 {
		lag = []string{"—"}
	}
	row("consumer lag", strings.Join(lag, "  ·  "))
	dr := f.drills()
	if dr != "none" {
		dr = drillStyle.Render(dr)
	}
	row("drill", dr)
	for i, line := range f.alertList(func(state, text string) string {
		if state == "firing" {
			return firingStyle.Render(text)
		}
		return pendStyle.Render(text)
	}) {
		label := ""
		if i == 0 {
			label = "alerts"
		}
		row(label, line)
	}
	if len(s.problems) > 0 {
		row("not read", strings.Join(s.problems, "; "))
	}
	b.WriteString("\n")
	row("order", f.where.OrderURL)
	row("inventory", f.where.InventoryURL)
	if f.where.PrometheusURL != "" {
		row("prometheus", f.where.PrometheusURL+"/alerts")
	}
	row("drills", "loudly drill start silent-skip  (loudly drill list, loudly drill stop)")
	return b.String()
}

// tui is the bubbletea model of the terminal view.
type tui struct {
	frame  frame
	width  int // the terminal's, from the last window size message
	onQuit func()
}

func (m tui) Init() tea.Cmd { return nil }

func (m tui) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case frame:
		m.frame = msg
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case tea.KeyPressMsg:
		switch msg.String() {
		case "ctrl+c", "q":
			m.onQuit()
			return m, tea.Quit
		}
	}
	return m, nil
}

func (m tui) View() tea.View {
	if m.frame.started.IsZero() {
		return tea.NewView("loudly demo: reading the first figures…\n")
	}
	return tea.NewView(m.frame.screen(m.width))
}

// newTUI is the terminal view on out; quitting it (Ctrl-C, q) calls onQuit.
func newTUI(out io.Writer, onQuit func()) *tea.Program {
	return tea.NewProgram(tui{onQuit: onQuit}, tea.WithOutput(out), tea.WithoutSignalHandler())
}

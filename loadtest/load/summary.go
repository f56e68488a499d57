package load

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// summary is the result of a run, as the last line of stdout shows it.
type Summary struct {
	Verified bool // false: nothing was checked, so every order and poison event counts as lost

	Scheduled  int // orders the schedule asked for
	Sent       int // orders handed to a worker
	Behind     int // orders not sent because every worker was busy at their time
	Accepted   int // orders the API answered 202
	HTTPErrors int // orders sent but not accepted, after retries
	Retries    int // extra requests made after connection errors and 5xx

	Confirmed, Rejected, Failed int // final statuses seen
	NotFinal                    int // accepted orders not final when verification ended (or unverified)
	Unexpected                  int // final outcomes the order's content does not explain

	PoisonSent    int // poison events the broker acknowledged
	PoisonErrors  int // poison events that could not be published
	DeadLettered  int // poison events found in the dead-letter stream
	PoisonMissing int // poison events not found there (or unverified)

	Lost int // NotFinal + PoisonMissing

	P50, P99 time.Duration // server-side settlement latency over final orders (after the warm-up)
	// WarmupOrders final orders were due within Config.Warmup; WarmupP99 is their
	// settlement latency's p99, kept out of P50 and P99.
	WarmupOrders int
	WarmupP99    time.Duration
	SendDuration time.Duration
	OrdersPerSec float64 // Accepted / SendDuration
	// VerifyDuration is how long verification took (after Config.Quiet returned, if set).
	VerifyDuration time.Duration
	// Windows are the run's figures window by window (Config.Window), in time order.
	Windows []Window
	// SettledPerSec is the pipeline's own throughput: final orders over the server-side span
	// from the first acceptance to the last final status. Under a rate the pipeline cannot
	// keep up with, it stays at what the pipeline does while OrdersPerSec follows the load.
	SettledPerSec float64
}

// Window is a stretch of Config.Window of a run, from Start after its first acceptance
// (server-side timestamps).
type Window struct {
	Start         time.Duration
	Length        time.Duration // Config.Window; the last window may be shorter
	Accepted      int           // final orders accepted in the window
	P99           time.Duration // their settlement latency's p99
	SettledPerSec float64       // final statuses set in the window, per second of it
}

// windows splits final orders into windows of length w from the first acceptance: what
// each window's orders took to settle, and how fast orders settled in it.
func windows(views []orderView, w time.Duration) []Window {
	if w <= 0 || len(views) == 0 {
		return nil
	}
	first, last := views[0].CreatedAt, time.Time{}
	for _, v := range views {
		if v.CreatedAt.Before(first) {
			first = v.CreatedAt
		}
		if end := v.CreatedAt.Add(v.latency()); end.After(last) {
			last = end
		}
	}
	n := int(last.Sub(first)/w) + 1
	latencies := make([][]time.Duration, n)
	settled := make([]int, n)
	for _, v := range views {
		latencies[int(v.CreatedAt.Sub(first)/w)] = append(latencies[int(v.CreatedAt.Sub(first)/w)], v.latency())
		settled[int(v.CreatedAt.Add(v.latency()).Sub(first)/w)]++
	}
	out := make([]Window, n)
	for i := range out {
		slices.Sort(latencies[i])
		length := min(w, last.Sub(first)-time.Duration(i)*w)
		out[i] = Window{Start: time.Duration(i) * w, Length: length, Accepted: len(latencies[i]), P99: percentile(latencies[i], 99)}
		if length > 0 {
			out[i].SettledPerSec = float64(settled[i]) / length.Seconds()
		}
	}
	return out
}

// Proven reports what the line's verified= says: the run was verified and nothing was
// lost — every accepted order final, every poison event dead-lettered. A run that was
// checked and lost something is not verified, whatever else it did.
func (s Summary) Proven() bool { return s.Verified && s.Lost == 0 }

// String is the summary line: the fields every consumer of the line relies on first, in
// a fixed order, then the extras; a run with a warm-up ends with its figures.
func (s Summary) String() string {
	line := fmt.Sprintf("accepted=%d confirmed=%d rejected=%d failed=%d dead_lettered=%d lost=%d p50_ms=%s p99_ms=%s orders_per_s=%s"+
		" settled_per_s=%s sent=%d http_errors=%d behind=%d retries=%d poison=%d poison_errors=%d unexpected=%d verified=%t",
		s.Accepted, s.Confirmed, s.Rejected, s.Failed, s.DeadLettered, s.Lost, ms(s.P50), ms(s.P99),
		strconv.FormatFloat(s.OrdersPerSec, 'f', 1, 64), strconv.FormatFloat(s.SettledPerSec, 'f', 1, 64),
		s.Sent, s.HTTPErrors, s.Behind, s.Retries, s.PoisonSent, s.PoisonErrors, s.Unexpected, s.Proven())
	if s.WarmupOrders > 0 {
		line += fmt.Sprintf(" warmup_orders=%d warmup_p99_ms=%s", s.WarmupOrders, ms(s.WarmupP99))
	}
	return line
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of sorted durations,
// 0 for none: the smallest value that at least p% of the values do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// report is everything a run saw, from which the summary and the breakdown are computed.
type report struct {
	cfg      Config
	sent     sendReport
	verified *verification // nil when the run did not verify
}

func (r report) summary() Summary {
	s := Summary{Verified: r.verified != nil, Scheduled: len(r.sent.orders), Behind: r.sent.behind,
		PoisonSent: len(r.sent.poisons), PoisonErrors: len(r.sent.poisonErrs), SendDuration: r.sent.elapsed}
	var latencies, warmup []time.Duration
	var finals []orderView
	var first, last time.Time
	for n, o := range r.sent.orders {
		if !o.sent {
			continue
		}
		s.Sent++
		s.Retries += o.attempts - 1
		if o.id == "" {
			s.HTTPErrors++
			continue
		}
		s.Accepted++
		if r.verified == nil {
			continue
		}
		view, ok := r.verified.orders[o.id]
		if !ok || !view.final() {
			continue
		}
		switch view.Status {
		case "confirmed":
			s.Confirmed++
		case "rejected":
			s.Rejected++
		case "failed":
			s.Failed++
		}
		if !o.kind.expected(view.Status, view.Reason) {
			s.Unexpected++
		}
		finals = append(finals, view)
		if r.cfg.warmingUp(n) {
			warmup = append(warmup, view.latency())
		} else {
			latencies = append(latencies, view.latency())
		}
		if end := view.CreatedAt.Add(view.latency()); last.Before(end) {
			last = end
		}
		if first.IsZero() || view.CreatedAt.Before(first) {
			first = view.CreatedAt
		}
	}
	s.NotFinal = s.Accepted - s.Confirmed - s.Rejected - s.Failed
	if r.verified != nil {
		s.DeadLettered = len(r.verified.letters)
		s.VerifyDuration = r.verified.waited
	}
	s.PoisonMissing = s.PoisonSent - s.DeadLettered
	s.Lost = s.NotFinal + s.PoisonMissing
	slices.Sort(latencies)
	slices.Sort(warmup)
	s.P50, s.P99 = percentile(latencies, 50), percentile(latencies, 99)
	s.WarmupOrders, s.WarmupP99 = len(warmup), percentile(warmup, 99)
	if s.SendDuration > 0 {
		s.OrdersPerSec = float64(s.Accepted) / s.SendDuration.Seconds()
	}
	s.Windows = windows(finals, r.cfg.Window)
	if span := last.Sub(first); span > 0 {
		s.SettledPerSec = float64(len(latencies)+len(warmup)) / span.Seconds()
	}
	return s
}

// printBreakdown writes the human part of the report, before the summary line.
func (r report) printBreakdown(w io.Writer, s Summary) {
	kinds := map[string]int{}
	for _, o := range r.sent.orders {
		if o.sent {
			kinds[o.kind.String()]++
		}
	}
	fmt.Fprintf(w, "sent %d of %d orders in %s (%d behind, %d retries): %d accepted, %d not accepted\n",
		s.Sent, s.Scheduled, s.SendDuration.Round(time.Millisecond), s.Behind, s.Retries, s.Accepted, s.HTTPErrors)
	fmt.Fprintf(w, "  mix: %s\n", counts(kinds))
	if len(r.sent.poisons)+len(r.sent.poisonErrs) > 0 {
		byKind := map[string]int{}
		for _, p := range r.sent.poisons {
			byKind[p.kind]++
		}
		fmt.Fprintf(w, "  poison events published: %d (%s), failed to publish: %d\n", s.PoisonSent, counts(byKind), s.PoisonErrors)
	}
	if r.verified == nil {
		why := "run with -verify"
		if r.cfg.Verify {
			why = "the run was interrupted"
		}
		fmt.Fprintf(w, "not verified (%s): %d accepted orders and %d poison events were not checked and count as lost\n",
			why, s.NotFinal, s.PoisonMissing)
		return
	}
	v := r.verified
	rejected, failed := map[string]int{}, map[string]int{}
	for _, o := range v.orders {
		switch o.Status {
		case "rejected":
			rejected[o.Reason]++
		case "failed":
			failed[o.Reason]++
		}
	}
	fmt.Fprintf(w, "checked in %s: %d confirmed, %d rejected, %d failed, %d not final\n",
		v.waited.Round(time.Millisecond), s.Confirmed, s.Rejected, s.Failed, s.NotFinal)
	if len(rejected) > 0 {
		fmt.Fprintf(w, "  rejected by reason: %s\n", counts(rejected))
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "  failed by reason: %s\n", counts(failed))
	}
	fmt.Fprintf(w, "  outcomes the order's content does not explain: %d\n", s.Unexpected)
	for _, win := range s.Windows {
		fmt.Fprintf(w, "  from %s for %s: %d accepted, p99 %s ms, %.1f settled/s\n",
			win.Start, win.Length.Round(time.Second), win.Accepted, ms(win.P99), win.SettledPerSec)
	}
	if s.PoisonSent > 0 {
		byReason := map[string]int{}
		for _, l := range v.letters {
			byReason[l.Reason]++
		}
		fmt.Fprintf(w, "  poison events in the dead letters: %d of %d (%s)\n", s.DeadLettered, s.PoisonSent, counts(byReason))
	}
	fmt.Fprintf(w, "  settlement latency (server side, %d final orders): p50 %sms, p99 %sms\n",
		s.Confirmed+s.Rejected+s.Failed-s.WarmupOrders, ms(s.P50), ms(s.P99))
	if s.WarmupOrders > 0 {
		fmt.Fprintf(w, "  in the warm-up (the first %s, %d final orders, not in the figures above): p99 %sms\n",
			r.cfg.Warmup, s.WarmupOrders, ms(s.WarmupP99))
	}
}

// warn writes, on stderr, examples of what went wrong without failing the run.
func (r report) warn(w io.Writer) {
	var notAccepted, unexpected []string
	for _, o := range r.sent.orders {
		switch {
		case !o.sent:
		case o.id == "":
			notAccepted = append(notAccepted, o.err.Error())
		case r.verified != nil:
			if view, ok := r.verified.orders[o.id]; ok && view.final() && !o.kind.expected(view.Status, view.Reason) {
				unexpected = append(unexpected, fmt.Sprintf("%s (%s order) %s %s", o.id, o.kind, view.Status, view.Reason))
			}
		}
	}
	if len(notAccepted) > 0 {
		fmt.Fprintf(w, "warning: %d orders were not accepted, e.g.: %s\n", len(notAccepted), examples(notAccepted))
	}
	if len(unexpected) > 0 {
		fmt.Fprintf(w, "warning: %d orders got an outcome their content does not explain, e.g.: %s\n", len(unexpected), examples(unexpected))
	}
	for i, err := range r.sent.poisonErrs {
		if i == 3 {
			fmt.Fprintf(w, "warning: … and %d more poison events not published\n", len(r.sent.poisonErrs)-i)
			break
		}
		fmt.Fprintf(w, "warning: poison event not published: %v\n", err)
	}
	if r.verified != nil && r.verified.dlqErr != nil {
		fmt.Fprintf(w, "warning: reading the dead letters: %v\n", r.verified.dlqErr)
	}
}

// failure is the run's error: nil for a clean run.
func (r report) failure(ctx context.Context, s Summary) error {
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after %d of %d orders: %w", s.Sent, s.Scheduled, ctx.Err())
	}
	if s.Sent > 0 && s.Accepted == 0 {
		return fmt.Errorf("none of %d orders was accepted by %s", s.Sent, r.cfg.URL)
	}
	if r.verified == nil || s.Lost == 0 {
		return nil
	}
	v := r.verified
	var problems []string
	if s.NotFinal > 0 {
		var ex []string
		for _, o := range r.sent.orders {
			if o.id == "" {
				continue
			}
			if view, ok := v.orders[o.id]; ok && view.final() {
				continue
			}
			state := "never read"
			if view, ok := v.orders[o.id]; ok {
				state = view.Status
			}
			if err := v.orderErrs[o.id]; err != nil {
				state += ", last error: " + err.Error()
			}
			ex = append(ex, fmt.Sprintf("%s (%s)", o.id, state))
		}
		problems = append(problems, fmt.Sprintf("%d of %d accepted orders are not final (e.g. %s)", s.NotFinal, s.Accepted, examples(ex)))
	}
	if s.PoisonMissing > 0 {
		var ex []string
		for _, p := range r.sent.poisons {
			if _, ok := v.letters[p.msgID]; !ok {
				ex = append(ex, fmt.Sprintf("%s (%s)", p.msgID, p.kind))
			}
		}
		problems = append(problems, fmt.Sprintf("%d of %d poison events are not in the dead letters (e.g. %s)", s.PoisonMissing, s.PoisonSent, examples(ex)))
	}
	return fmt.Errorf("%w after waiting %s: lost=%d: %s", ErrLost, v.waited.Round(time.Millisecond), s.Lost, strings.Join(problems, "; "))
}

// examples joins the first few items.
func examples(items []string) string {
	const n = 5
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + ", …"
}

// counts formats a tally as "a 3, b 1", largest first.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		label := k
		if label == "" {
			label = "(no reason)"
		}
		parts[i] = label + " " + strconv.Itoa(m[k])
	}
	return strings.Join(parts, ", ")
}

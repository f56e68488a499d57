// Package load is the load generator's engine: it sends orders to the order service at a
// steady rate with a trickle of poison events published straight to the broker, then
// (with Verify) proves that nothing was lost on the way — every order the API accepted
// reached a final status, every poison event ended up in the dead letters — and reports
// it in one machine-readable summary line (Summary). The loadtest command parses flags
// around it; `loudly demo` runs it until Ctrl-C.
package load

import (
	"context"
	"math"
	"time"
)

// The demo's load: `loudly demo` (make demo) sends it, and the compose demo's load
// generator too (deploy/compose/.env: LOAD_RATE, POISON). The alert rules and the drill
// guides are checked against it (alerts.DemoClaims): at DemoPoison the invalid share of
// the inventory's decisions, DemoPoison/(1+DemoPoison), stays well below
// LoudlyInvalidRateHigh's 1%, while letters keep arriving, as the guides say.
const (
	DemoRate   = 20.0  // orders per second
	DemoPoison = 0.002 // poison events per order
)

// Config is what a run does.
type Config struct {
	URL         string        // base URL of the order service
	NATSURL     string        // JetStream server the services use (poison and dead letters)
	Rate        float64       // orders per second
	Duration    time.Duration // how long to send; 0 with Stop: until Stop is closed
	Poison      float64       // poison events per order sent, in [0, 1]
	Verify      bool          // wait for every order and poison event to reach its end
	Timeout     time.Duration // how long verification may wait
	Concurrency int           // HTTP requests in flight at most
	Seed        uint64        // order mix; 0 picks one at random (printed, to repeat a run)

	// Warmup is the start of the schedule whose orders are sent and verified like the
	// others, but whose settlement latencies are reported on their own (WarmupP99), not
	// in P50/P99: the first seconds of a freshly started pipeline measure its start (heaps
	// growing, statements prepared on each connection, consumers' first pulls), not
	// its latency at the rate.
	Warmup time.Duration

	// Window, when set, splits the run into windows of this length from the first
	// acceptance, each with its own figures (Summary.Windows): a long run shows whether its
	// latency or throughput drifted, which one p99 over the whole run hides.
	Window time.Duration

	// Stop, when closed, ends the sending phase early: the orders in flight finish, and
	// what was sent is verified as after a complete run (while cancelling ctx interrupts
	// the run, verification included). `loudly demo` closes it on Ctrl-C.
	Stop <-chan struct{}

	// Quiet, when set, is called between sending and verifying and returns once the
	// system under test has nothing in flight (or ctx ends). Verification then reads each
	// order about once, instead of polling the service while the pipeline still works,
	// which would take from the throughput being measured. Benchmarks set it; flags do not.
	Quiet func(ctx context.Context) error
}

// Total is the number of orders the run schedules; 0 for a run that sends until Stop.
func (c Config) Total() int { return int(math.Round(c.Rate * c.Duration.Seconds())) }

// warmingUp reports whether the schedule's n-th order (from 0) is due within Warmup.
func (c Config) warmingUp(n int) bool { return float64(n) < c.Rate*c.Warmup.Seconds() }

// openEnded reports whether the run sends until Stop rather than for Duration.
func (c Config) openEnded() bool { return c.Duration == 0 && c.Stop != nil }

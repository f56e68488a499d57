package load

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/deadletter"
	"loudly/services/events"
)

// progressEvery is how often a long phase reports on stderr.
const progressEvery = 5 * time.Second

// run is the whole program after flag parsing: send, optionally verify, report. The
// summary line is printed on stdout whatever happens after sending started; the error
// says why the run failed (nothing accepted, something lost, interrupted).
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) (Summary, error) {
	s, err := runLoad(ctx, cfg, stdout, &syncWriter{w: stderr})
	if errors.Is(err, ErrNotStarted) {
		fmt.Fprintln(stdout, s) // nothing was sent: a summary of zeros, still the last line
	}
	return s, err
}

// ErrNotStarted marks a failure before the first order was sent.
var ErrNotStarted = errors.New("not started")

func runLoad(ctx context.Context, cfg Config, stdout, stderr io.Writer) (Summary, error) {
	seed := cfg.Seed
	for seed == 0 {
		seed = randomUint64()
	}
	runID := randomHex(4)
	client := newHTTPClient(cfg.Concurrency)
	defer client.CloseIdleConnections()

	ready, err := checkReachable(ctx, client, cfg.URL)
	if err != nil {
		return Summary{}, fmt.Errorf("%w: %w", ErrNotStarted, err)
	}
	if !ready {
		fmt.Fprintf(stderr, "warning: %s/readyz does not answer 200; sending anyway\n", cfg.URL)
	}
	var js jetstream.JetStream
	if cfg.Poison > 0 {
		nc, err := nats.Connect(cfg.NATSURL, nats.Name("loudly-loadtest"), nats.Timeout(5*time.Second))
		if err != nil {
			return Summary{}, fmt.Errorf("%w: -nats %s: %w", ErrNotStarted, cfg.NATSURL, err)
		}
		defer nc.Close()
		if js, err = jetstream.New(nc); err != nil {
			return Summary{}, fmt.Errorf("%w: -nats %s: %w", ErrNotStarted, cfg.NATSURL, err)
		}
		// Without the stream a publish finds no responder; say so once, up front.
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = js.Stream(sctx, events.StreamOrders)
		cancel()
		if err != nil {
			return Summary{}, fmt.Errorf("%w: -nats %s: stream %s: %w (is the order service using this server?)",
				ErrNotStarted, cfg.NATSURL, events.StreamOrders, err)
		}
	}

	if cfg.openEnded() {
		fmt.Fprintf(stdout, "run %s (seed %d): orders at %g/s until stopped to %s, %g poison events per order, verify=%t\n",
			runID, seed, cfg.Rate, cfg.URL, cfg.Poison, cfg.Verify)
	} else {
		fmt.Fprintf(stdout, "run %s (seed %d): %d orders at %g/s for %s to %s, %g poison events per order, verify=%t\n",
			runID, seed, cfg.Total(), cfg.Rate, cfg.Duration, cfg.URL, cfg.Poison, cfg.Verify)
	}
	p := &placer{client: client, baseURL: cfg.URL, runID: runID, seed: seed}
	sent := send(ctx, cfg, p, js, stderr)

	var v *verification
	if cfg.Verify && cfg.Quiet != nil && ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		if err := cfg.Quiet(qctx); err != nil {
			fmt.Fprintf(stderr, "warning: waiting for the pipeline to finish: %v; verifying now\n", err)
		}
		cancel()
	}
	if cfg.Verify && ctx.Err() == nil {
		v = verify(ctx, cfg, client, js, sent, stderr)
	}
	r := report{cfg: cfg, sent: sent, verified: v}
	s := r.summary()
	r.printBreakdown(stdout, s)
	fmt.Fprintln(stdout, s)
	r.warn(stderr)
	return s, r.failure(ctx, s)
}

// sendReport is what the sending phase did.
type sendReport struct {
	orders     []placed // index n is order n+1 of the schedule
	behind     int      // orders whose send time came while every worker was busy; not sent
	elapsed    time.Duration
	poisons    []poison
	poisonErrs []error
}

// send schedules cfg.Total() orders evenly over cfg.Duration (or, open-ended, one every
// 1/cfg.Rate until cfg.Stop is closed) and publishes poison events in step with them.
// The schedule never waits for the service: a ticker decides when each order is due and
// hands it to a bounded pool of workers. When every worker is busy and the hand-off queue
// is full, the order is counted as behind and skipped (an open-model load test, like k6's
// dropped iterations), so a slow service shows up as "behind" instead of quietly lowering
// the rate. Closing cfg.Stop ends the schedule as its end would: the orders in flight
// finish.
func send(ctx context.Context, cfg Config, p *placer, js jetstream.JetStream, progress io.Writer) sendReport {
	total := cfg.Total()
	if cfg.openEnded() {
		total = math.MaxInt
	}
	var sched schedule
	var r sendReport
	var accepted, notAccepted, behind, poisoned atomic.Int64

	type job struct {
		n   int
		out *placed
	}
	jobs := make(chan job, cfg.Concurrency)
	var workers sync.WaitGroup
	for range cfg.Concurrency {
		workers.Go(func() {
			for j := range jobs {
				res := p.place(ctx, j.n+1)
				*j.out = res // each slot is written by one worker only
				if res.id != "" {
					accepted.Add(1)
				} else {
					notAccepted.Add(1)
				}
			}
		})
	}

	// Poison events are published from their own goroutine, so a slow PubAck never
	// holds up the order schedule. Queueing one never blocks: when the queue is full,
	// the event is queued with a later order instead.
	poisonQueue := make(chan string, min(int(float64(min(total, 1<<20))*cfg.Poison)+1, 4096))
	var publisher sync.WaitGroup
	if js != nil {
		publisher.Go(func() {
			for kind := range poisonQueue {
				pz, err := publishPoison(ctx, js, kind)
				if err != nil {
					r.poisonErrs = append(r.poisonErrs, err)
					continue
				}
				r.poisons = append(r.poisons, pz)
				poisoned.Add(1)
			}
		})
	}

	start := time.Now()
	stopProgress := every(progressEvery, func() {
		fmt.Fprintf(progress, "sending: %s, %d accepted, %d not accepted, %d behind, %d poison events published\n",
			time.Since(start).Round(time.Second), accepted.Load(), notAccepted.Load(), behind.Load(), poisoned.Load())
	})
	interval := max(time.Duration(float64(time.Second)/cfg.Rate), time.Millisecond)
	ticker := time.NewTicker(interval)
	next, dispatched, poisonQueued := 0, 0, 0
loop:
	for next < total {
		// Everything due by now goes out, so a late tick (or an interval clamped to 1ms
		// for high rates) catches up instead of lowering the rate.
		due := min(total, int(time.Since(start).Seconds()*cfg.Rate)+1)
		for ; next < due; next++ {
			select {
			case jobs <- job{next, sched.slot(next)}:
				dispatched++
			default:
				behind.Add(1)
				continue
			}
		poison:
			for want := int(math.Floor(float64(dispatched)*cfg.Poison + 1e-9)); js != nil && poisonQueued < want; poisonQueued++ {
				select {
				case poisonQueue <- poisonKinds[poisonQueued%len(poisonKinds)]:
				default:
					break poison
				}
			}
		}
		if next >= total {
			break
		}
		select {
		case <-ctx.Done():
			break loop // interrupted: the rest stays unsent
		case <-cfg.Stop:
			break loop // stopped: the end of the schedule
		case <-ticker.C:
		}
	}
	ticker.Stop()
	close(jobs)
	close(poisonQueue)
	workers.Wait()
	publisher.Wait()
	stopProgress()
	r.orders = sched.orders(next, cfg.Total())
	// The last order's slot ends 1/rate after it is due; a fast service must not make
	// the run look quicker than its schedule.
	r.elapsed = max(time.Since(start), time.Duration(float64(next)/cfg.Rate*float64(time.Second)))
	r.behind = int(behind.Load())
	return r
}

// schedule holds what became of each order of a run, in blocks that never move once
// made, so workers write their results while the schedule grows (an open-ended run does
// not know its length in advance).
type schedule struct{ blocks [][]placed }

const scheduleBlock = 4096

// slot is where order n's result goes; orders are given slots in turn, from 0.
func (s *schedule) slot(n int) *placed {
	if n/scheduleBlock == len(s.blocks) {
		s.blocks = append(s.blocks, make([]placed, scheduleBlock))
	}
	return &s.blocks[n/scheduleBlock][n%scheduleBlock]
}

// orders returns the results of the first scheduled orders, or of all total orders of a
// run with an end (those not reached count as not sent), in schedule order.
func (s *schedule) orders(scheduled, total int) []placed {
	out := make([]placed, max(scheduled, total))
	for i, b := range s.blocks {
		copy(out[i*scheduleBlock:], b)
	}
	return out
}

// verification is what the verifying phase saw.
type verification struct {
	waited    time.Duration
	orders    map[string]orderView         // last state seen of each accepted order
	orderErrs map[string]error             // last error reading an order, while not final
	letters   map[string]deadletter.Letter // poison Nats-Msg-Id → its dead letter
	dlqErr    error                        // last error reading the dead letters
}

// verify waits, up to cfg.Timeout, until every accepted order is final and every poison
// event is in the dead letters. Orders and dead letters are checked side by side.
func verify(parent context.Context, cfg Config, client *http.Client, js jetstream.JetStream, sent sendReport, progress io.Writer) *verification {
	ctx, cancel := context.WithTimeout(parent, cfg.Timeout)
	defer cancel()
	start := time.Now()
	v := &verification{orders: map[string]orderView{}, orderErrs: map[string]error{}, letters: map[string]deadletter.Letter{}}

	var ids []string
	for _, o := range sent.orders {
		if o.id != "" {
			ids = append(ids, o.id)
		}
	}
	want := make(map[string]poison, len(sent.poisons))
	for _, p := range sent.poisons {
		want[p.msgID] = p
	}
	var ordersLeft, lettersLeft atomic.Int64
	ordersLeft.Store(int64(len(ids)))
	lettersLeft.Store(int64(len(want)))
	stopProgress := every(progressEvery, func() {
		fmt.Fprintf(progress, "verifying: %s, %d orders not final, %d poison events not dead-lettered yet\n",
			time.Since(start).Round(time.Second), ordersLeft.Load(), lettersLeft.Load())
	})
	defer stopProgress()

	var wg sync.WaitGroup
	wg.Go(func() {
		pending := ids
		for len(pending) > 0 {
			pending = checkOrders(ctx, client, cfg.URL, pending, verifyWorkers, notFinalBudget, v)
			ordersLeft.Store(int64(len(pending)))
			if len(pending) == 0 || !Sleep(ctx, 500*time.Millisecond) {
				break
			}
		}
		// Orders that will never settle (a consumer that skipped them) end every pass
		// early, so the newer ones behind them may never have been read: a last pass
		// reads each order still pending once, so only orders seen not final count as
		// not final.
		if len(pending) > 0 && parent.Err() == nil {
			lctx, cancel := context.WithTimeout(parent, 30*time.Second)
			pending = checkOrders(lctx, client, cfg.URL, pending, verifyWorkers, len(pending), v)
			cancel()
			ordersLeft.Store(int64(len(pending)))
		}
	})
	if len(want) > 0 {
		wg.Go(func() {
			for {
				found, err := findDeadLetters(ctx, js, want)
				for id, l := range found {
					v.letters[id] = l
				}
				if err != nil && ctx.Err() == nil {
					v.dlqErr = err
				}
				lettersLeft.Store(int64(len(want) - len(v.letters)))
				// Each look reads the whole dead-letter stream, so look less often than at orders.
				if len(v.letters) == len(want) || !Sleep(ctx, time.Second) {
					return
				}
			}
		})
	}
	wg.Wait()
	v.waited = time.Since(start)
	return v
}

// verifyWorkers is how many batch reads verification has in flight.
const verifyWorkers = 4

// notFinalBudget is how many orders in flight end a pass of checkOrders.
const notFinalBudget = 200

// checkOrders reads pending orders, oldest first, batchGetSize at a time with up to
// workers reads in flight, records what it saw in v, and returns the ids that are not
// final yet, still oldest first. Orders settle roughly in the order they were placed, so
// once a pass has met budget orders that are still in flight, the newer ones most likely
// are too: the pass ends there instead of loading the service under test with reads
// while it catches up.
func checkOrders(ctx context.Context, client *http.Client, baseURL string, ids []string, workers, budget int, v *verification) []string {
	final := make([]bool, len(ids))
	var mu sync.Mutex
	var notFinal atomic.Int64
	jobs := make(chan int) // the first index of a batch
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for first := range jobs {
				batch := ids[first:min(first+batchGetSize, len(ids))]
				views, errs, err := getOrders(ctx, client, baseURL, batch)
				mu.Lock()
				for i, id := range batch {
					o, ok := views[id]
					switch {
					case ok:
						v.orders[id] = o
						delete(v.orderErrs, id)
					case err != nil:
						if ctx.Err() == nil || v.orderErrs[id] == nil {
							v.orderErrs[id] = err
						}
					case errs[id] != nil:
						v.orderErrs[id] = errs[id]
					default:
						v.orderErrs[id] = fmt.Errorf("not in the answer to POST /v1/orders:batchGet")
					}
					if ok && o.final() {
						final[first+i] = true // each index is written by one worker only
					} else {
						notFinal.Add(1)
					}
				}
				mu.Unlock()
			}
		})
	}
	for first := 0; first < len(ids); first += batchGetSize {
		if notFinal.Load() >= int64(budget) || ctx.Err() != nil {
			break
		}
		jobs <- first
	}
	close(jobs)
	wg.Wait()
	var pending []string
	for i, id := range ids {
		if !final[i] {
			pending = append(pending, id)
		}
	}
	return pending
}

// Sleep waits for d and reports false if ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// every calls f every d until the returned stop function is called.
func every(d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// syncWriter lets the progress reporters and the main flow share stderr.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

var ErrLost = errors.New("verification failed")

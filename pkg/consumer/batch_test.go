package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"loudly/internal/testenv"
	"loudly/pkg/consumer"
	"loudly/pkg/envelope"
)

// thingType is the batch suite's event type: any name, a count that must not be negative.
var thingType = envelope.NewType(testType, func(_ envelope.Envelope, p thing) error {
	if p.Count < 0 {
		return envelope.Invalidf("negative_count", "count %d", p.Count)
	}
	return nil
})

// startBatch runs a batch runner until the test ends, and checks that it stops cleanly.
func (r *rig) startBatch(t *testing.T, c consumer.Config, h consumer.BatchHandler) {
	t.Helper()
	run, err := consumer.NewBatch(context.Background(), r.js, r.config(c), h, r.tel.Telemetry)
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, run)
}

// publishThing publishes an event named name and returns its id.
func (r *rig) publishThing(t *testing.T, name string, count int) string {
	t.Helper()
	env, b, err := envelope.New(testType, newKey(), thing{Name: name, Count: count}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.publish(t, env.ID, b)
	return env.ID
}

// decisionsOf returns the decision lines of one event, in delivery order.
func (r *rig) decisionsOf(eventID string) []map[string]any {
	return r.tel.Decisions(map[string]string{"consumer": r.name, "event_id": eventID})
}

// batchCalls records the sizes of the batches a handler was given.
type batchCalls struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batchCalls) add(n int) { b.mu.Lock(); b.sizes = append(b.sizes, n); b.mu.Unlock() }

// applyAll is a batch handler that records the batch's size and applies every message.
func (b *batchCalls) applyAll(_ context.Context, items []consumer.Item[thing]) ([]consumer.Result, error) {
	b.add(len(items))
	out := make([]consumer.Result, len(items))
	for i := range out {
		out[i] = consumer.Applied("done")
	}
	return out, nil
}

func (b *batchCalls) get() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...)
}

// One batch, every outcome: each message ends in its own result, settlement, span and
// record, exactly as if it had been decided alone; messages no handler should see never
// reach it; a message retried is redelivered alone while its neighbours are not.
func TestBatch_MixedOutcomesEachRecordedOnItsOwn(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	ids := map[string]string{}
	for _, name := range []string{"apply", "reject", "dup", "retry-once", "apply-2"} {
		ids[name] = r.publishThing(t, name, 1)
	}
	ids["invalid"] = r.publishThing(t, "invalid", -1)
	r.publish(t, "malformed-1", []byte(`{"id":`))

	var calls batchCalls
	var mu sync.Mutex
	attempts := map[string]int{}
	r.startBatch(t, consumer.Config{Concurrency: 1, BatchSize: 50, BatchWait: 300 * time.Millisecond},
		consumer.HandleBatch(thingType, func(_ context.Context, items []consumer.Item[thing]) ([]consumer.Result, error) {
			calls.add(len(items))
			out := make([]consumer.Result, len(items))
			for i, it := range items {
				mu.Lock()
				attempts[it.Payload.Name]++
				n := attempts[it.Payload.Name]
				mu.Unlock()
				switch it.Payload.Name {
				case "reject":
					out[i] = consumer.Rejected("out_of_things")
				case "dup":
					out[i] = consumer.Duplicate("seen_before")
				case "retry-once":
					if n == 1 {
						out[i] = consumer.Retry("db_unavailable", errors.New("connection refused"))
					} else {
						out[i] = consumer.Applied("done")
					}
				default:
					out[i] = consumer.Applied("done")
				}
			}
			return out, nil
		}))
	r.waitForDecisions(t, 8)

	want := map[string][]string{
		"apply":      {"applied/done/ack"},
		"apply-2":    {"applied/done/ack"},
		"reject":     {"rejected/out_of_things/ack"},
		"dup":        {"duplicate/seen_before/ack"},
		"retry-once": {"retry/db_unavailable/nak", "applied/done/ack"},
		"invalid":    {"invalid/negative_count/term"},
	}
	for name, steps := range want {
		lines := r.decisionsOf(ids[name])
		if len(lines) != len(steps) {
			t.Errorf("%s: %d decisions %v, want %v", name, len(lines), lines, steps)
			continue
		}
		for i, l := range lines {
			if got := l["outcome"].(string) + "/" + l["reason"].(string) + "/" + l["settlement"].(string); got != steps[i] {
				t.Errorf("%s decision %d = %s, want %s", name, i+1, got, steps[i])
			}
			if l["delivery"] != float64(i+1) {
				t.Errorf("%s decision %d is delivery %v", name, i+1, l["delivery"])
			}
		}
	}
	if m := r.tel.Decisions(map[string]string{"consumer": r.name, "outcome": "invalid", "reason": envelope.ReasonMalformed}); len(m) != 1 {
		t.Errorf("malformed envelope: %d decisions, want 1", len(m))
	}
	if sizes := calls.get(); len(sizes) < 2 || sizes[0] != 5 || sizes[1] != 1 {
		t.Errorf("batches %v: want the five decodable events in one batch, then the retried one alone", sizes)
	}
	if n := len(r.letters(t)); n != 2 {
		t.Errorf("%d dead letters, want 2 (the invalid payload and the malformed envelope)", n)
	}

	// Each message's span continues its producer's trace and links to its batch's span.
	batchSpans := map[string]bool{}
	for _, s := range r.tel.Spans() {
		if s.Name() == "process batch "+r.name {
			batchSpans[s.SpanContext().SpanID().String()] = true
		}
	}
	spans := r.processSpans()
	if len(spans) != 8 {
		t.Fatalf("%d process spans, want one per delivery (8)", len(spans))
	}
	for _, s := range spans {
		if len(s.Links()) != 1 || !batchSpans[s.Links()[0].SpanContext.SpanID().String()] {
			t.Errorf("span %s links %v, want one link to its batch's span", s.SpanContext().SpanID(), s.Links())
		}
		if !s.Parent().IsValid() {
			t.Errorf("span %s has no parent: the producer's trace was not continued", s.SpanContext().SpanID())
		}
	}
}

// A batch that fails as a whole (its transaction did not commit) is decided again one
// message at a time: the message that breaks it fails alone and is dead-lettered once its
// retries run out; every other message is applied exactly once — never a blanket retry,
// ack or dead letter.
func TestBatch_AFailedBatchIsDecidedAgainMessageByMessage(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	var good []string
	for range 6 {
		good = append(good, r.publishThing(t, "good", 1))
	}
	breaker := r.publishThing(t, "breaks-the-batch", 1)
	for range 3 {
		good = append(good, r.publishThing(t, "good", 1))
	}

	var calls batchCalls
	r.startBatch(t, consumer.Config{Concurrency: 1, BatchSize: 50, BatchWait: 300 * time.Millisecond},
		consumer.HandleBatch(thingType, func(_ context.Context, items []consumer.Item[thing]) ([]consumer.Result, error) {
			calls.add(len(items))
			out := make([]consumer.Result, len(items))
			for i, it := range items {
				if it.Payload.Name == "breaks-the-batch" {
					if len(items) > 1 {
						return nil, errors.New("deadlock detected (SQLSTATE 40P01)")
					}
					out[i] = consumer.Retry("db_conflict", errors.New("deadlock detected (SQLSTATE 40P01)"))
					continue
				}
				out[i] = consumer.Applied("done")
			}
			return out, nil
		}))
	r.waitForDecisions(t, len(good)+maxDeliver)

	for _, id := range good {
		lines := r.decisionsOf(id)
		if len(lines) != 1 || lines[0]["outcome"] != "applied" || lines[0]["settlement"] != "ack" {
			t.Errorf("a good neighbour got %v, want applied once", lines)
		}
	}
	lines := r.decisionsOf(breaker)
	if len(lines) != maxDeliver {
		t.Fatalf("the breaker has %d decisions, want %d", len(lines), maxDeliver)
	}
	for i, l := range lines {
		want := "retry"
		if i == maxDeliver-1 {
			want = "dead_lettered"
		}
		if l["outcome"] != want || l["reason"] != "db_conflict" {
			t.Errorf("breaker decision %d = %v/%v, want %s/db_conflict", i+1, l["outcome"], l["reason"], want)
		}
	}
	if got := r.tel.Decisions(map[string]string{"stage": "batch", "reason": "batch_failed"}); len(got) == 0 {
		t.Error("the failed batch left no record of its own")
	}
	if sizes := calls.get(); len(sizes) < 2 || sizes[0] != 10 || sizes[1] != 1 {
		t.Errorf("batches %v: want all ten together, then one at a time", sizes)
	}
}

// Middleware sees each message of a batch as it would see it alone: it may decide one
// itself (the rest still go to the handler together), and a message held up after its
// decision (a stuck call) does not hold back the settlement of its neighbours.
func TestBatch_MiddlewareDecidesAndStallsPerMessage(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	skipped := r.publishThing(t, "skip", 1)
	slow := r.publishThing(t, "slow", 1)
	var fast []string
	for range 4 {
		fast = append(fast, r.publishThing(t, "fast", 1))
	}

	release := make(chan struct{})
	mw := func(next consumer.Handler) consumer.Handler {
		return func(ctx context.Context, m *consumer.Message) consumer.Result {
			p, _ := thingType.Decode(m.Event)
			if p.Name == "skip" {
				return consumer.Applied("skipped")
			}
			res := next(ctx, m)
			if p.Name == "slow" {
				<-release
			}
			return res
		}
	}
	var calls batchCalls
	r.startBatch(t, consumer.Config{Concurrency: 1, BatchSize: 50, BatchWait: 300 * time.Millisecond, AckWait: 10 * time.Second},
		consumer.HandleBatch(thingType, calls.applyAll, mw))

	testenv.WaitFor(t, 10*time.Second, "the fast messages and the skipped one decided", func() bool {
		n := len(r.decisionsOf(skipped))
		for _, id := range fast {
			n += len(r.decisionsOf(id))
		}
		return n == 5
	})
	if n := len(r.decisionsOf(slow)); n != 0 {
		t.Fatalf("the stalled message was decided while still stalled: %d decisions", n)
	}
	close(release)
	testenv.WaitFor(t, 10*time.Second, "the stalled message decided", func() bool { return len(r.decisionsOf(slow)) == 1 })
	if l := r.decisionsOf(skipped)[0]; l["reason"] != "skipped" {
		t.Errorf("the skipped message: %v", l)
	}
	if sizes := calls.get(); len(sizes) != 1 || sizes[0] != 5 {
		t.Errorf("batches %v: want one batch of the five messages the middleware passed on", sizes)
	}
}

// Messages that arrive together go into one batch however many handler goroutines are
// idle: one batch fills at a time, so a burst (a producer's batch of results, published
// at once) is one transaction for the handler, not one per idle goroutine.
func TestBatch_ABurstFillsOneBatch(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	for i := range 12 {
		r.publishThing(t, fmt.Sprintf("burst-%d", i), 1)
	}
	var calls batchCalls
	r.startBatch(t, consumer.Config{Concurrency: 4, BatchSize: 64, BatchWait: 300 * time.Millisecond},
		consumer.HandleBatch(thingType, calls.applyAll))
	r.waitForDecisions(t, 12)
	if sizes := calls.get(); len(sizes) != 1 || sizes[0] != 12 {
		t.Errorf("batches %v: want the 12 messages of the burst in one batch, with 4 handler goroutines idle", sizes)
	}
	// The batch is in loudly.consumer.batch.size, under its consumer: one batch of 12.
	var found bool
	for _, sm := range r.tel.Collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "loudly.consumer.batch.size" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Histogram[int64]).DataPoints {
				if v, _ := dp.Attributes.Value("consumer"); v.AsString() != r.name {
					continue
				}
				found = true
				if dp.Count != 1 || dp.Sum != 12 {
					t.Errorf("batch size histogram of %s: %d batches, %d messages; want 1 batch of 12", r.name, dp.Count, dp.Sum)
				}
			}
		}
	}
	if !found {
		t.Errorf("no loudly.consumer.batch.size point for consumer %s", r.name)
	}
}

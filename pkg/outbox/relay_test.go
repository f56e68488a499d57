package outbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"loudly/internal/testenv"
	"loudly/pkg/outbox"
	"loudly/pkg/telemetry/telemetrytest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// table is the outbox table of these tests, created by Outbox.Migrate.
const table = "shop.outbox"

func TestRelay_PublishesACommittedRowContinuingItsTrace(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	ctx, span := r.tel.Tracer().Start(context.Background(), "POST /v1/orders", trace.WithSpanKind(trace.SpanKindServer))
	m := r.message("placed")
	m.Headers = nats.Header{"Loudly-Test": []string{"kept"}}
	r.enqueue(t, ctx, true, m)
	span.End()
	r.run(t, outbox.RelayConfig{})

	r.waitForStream(t, 1)
	got := r.streamMsg(t, 1)

	t.Run("the message is the row, deduplicated by its event id", func(t *testing.T) {
		if got.Subject != m.Subject || !bytes.Equal(got.Data, m.Payload) {
			t.Errorf("published %s %q, want %s %q", got.Subject, got.Data, m.Subject, m.Payload)
		}
		if id := got.Header.Get(jetstream.MsgIDHeader); id != m.EventID {
			t.Errorf("Nats-Msg-Id = %q, want the event id %s", id, m.EventID)
		}
		if h := got.Header.Get("Loudly-Test"); h != "kept" {
			t.Errorf("extra header Loudly-Test = %q, want %q", h, "kept")
		}
	})

	t.Run("the publish span is a child of the span that enqueued the row", func(t *testing.T) {
		pub := r.spanNamed(t, "publish "+m.Subject)
		if pub.SpanKind() != trace.SpanKindProducer {
			t.Errorf("publish span kind = %s, want producer", pub.SpanKind())
		}
		if pub.SpanContext().TraceID() != span.SpanContext().TraceID() || pub.Parent().SpanID() != span.SpanContext().SpanID() {
			t.Errorf("publish span is in trace %s under %s, want trace %s under %s",
				pub.SpanContext().TraceID(), pub.Parent().SpanID(), span.SpanContext().TraceID(), span.SpanContext().SpanID())
		}
		attrs := map[string]string{}
		for _, kv := range pub.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
		}
		for k, v := range map[string]string{"messaging.system": "nats", "messaging.destination.name": m.Subject, "messaging.message.id": m.EventID} {
			if attrs[k] != v {
				t.Errorf("publish span %s = %q, want %q", k, attrs[k], v)
			}
		}

		// The consumer continues from the traceparent the message carries: the publish span.
		want := fmt.Sprintf("00-%s-%s-01", span.SpanContext().TraceID(), pub.SpanContext().SpanID())
		if tp := got.Header.Get("traceparent"); tp != want {
			t.Errorf("traceparent = %q, want %q (same trace, parent = the publish span)", tp, want)
		}
	})

	t.Run("the row is marked sent and counted", func(t *testing.T) {
		// The stream has the message as soon as the PubAck is sent; the relay's transaction
		// marks the row a moment later.
		testenv.WaitFor(t, 5*time.Second, "the row marked sent", func() bool { return r.row(t, m.EventID).sentAt != nil })
		row := r.row(t, m.EventID)
		if row.sentAt == nil || row.attempts != 0 || row.lastError != nil {
			t.Errorf("row: sent_at %v, attempts %d, last_error %v; want sent on the first attempt", row.sentAt, row.attempts, row.lastError)
		}
		testenv.WaitFor(t, 5*time.Second, "loudly.outbox.published = 1", func() bool {
			return r.tel.CounterValue(t, "loudly.outbox.published", map[string]string{"table": table}) == 1
		})
	})
}

func TestRelay_ARolledBackTransactionPublishesNothing(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	rolledBack, committed := r.message("placed"), r.message("placed")
	r.enqueue(t, context.Background(), false, rolledBack)
	r.enqueue(t, context.Background(), true, committed)
	r.run(t, outbox.RelayConfig{})

	r.waitForStream(t, 1)
	// A later row, committed once the first is out: the claim that publishes it reads the
	// whole table again, so a rolled-back row that had reached the table would go out with
	// it or before it.
	later := r.message("placed")
	r.enqueue(t, context.Background(), true, later)
	r.waitForStream(t, 2)
	if n := r.streamState(t).Msgs; n != 2 {
		t.Fatalf("stream holds %d messages, want only the two committed ones", n)
	}
	for seq, want := range map[uint64]string{1: committed.EventID, 2: later.EventID} {
		if id := r.streamMsg(t, seq).Header.Get(jetstream.MsgIDHeader); id != want {
			t.Errorf("message %d is %s, want the committed event %s", seq, id, want)
		}
	}
	var n int
	if err := r.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE event_id = $1`, rolledBack.EventID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("the rolled-back row is in the outbox")
	}
}

func TestRelay_WakesOnNotify(t *testing.T) {
	// With a one-minute poll, only a wake-up can make a relay publish within a second.
	slow := outbox.RelayConfig{PollInterval: time.Minute}
	t.Run("the relay of the committing process wakes at once", func(t *testing.T) {
		r := newRig(t, testenv.NATS(t))
		r.run(t, slow)
		r.publishesPromptly(t)
	})
	t.Run("a relay in another process wakes on NOTIFY", func(t *testing.T) {
		r := newRig(t, testenv.NATS(t))
		other := telemetrytest.New(t, "order-replica")
		ob, err := outbox.New(table, r.newPool(t), other.Telemetry)
		if err != nil {
			t.Fatal(err)
		}
		relay, err := outbox.NewRelay(ob, r.newPool(t), outbox.JetStream(r.js), slow)
		if err != nil {
			t.Fatal(err)
		}
		runUntilCleanup(t, relay)
		r.waitListening(t) // the other relay's
		r.publishesPromptly(t)
	})
}

// A relay ignores the NOTIFYs of its own outbox: Notify woke it directly already, and
// waking again on the notification would cost one more claim, found empty, per NOTIFY.
// Another process's NOTIFY still wakes it.
func TestRelay_IgnoresItsOwnNotify(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	relay := r.relayWith(t, outbox.RelayConfig{PollInterval: time.Minute})
	runUntilCleanup(t, relay)
	r.waitListening(t)
	testenv.WaitFor(t, 5*time.Second, "the relay's first drain, at its start, ended", func() bool {
		return outbox.Claims(relay) == 1 && outbox.ClaimsEnded(relay) == 1
	})

	// A row committed without Notify: only a notification or the poll can publish it.
	ctx := context.Background()
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := r.ob.Enqueue(ctx, tx, r.message("placed")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	notify := func(sender string) {
		t.Helper()
		if _, err := r.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, outbox.ChannelOf(r.ob), sender); err != nil {
			t.Fatal(err)
		}
	}

	// Both notifications reach the relay's LISTEN connection in the order they were sent,
	// so once the second has woken it (a claim that published the row) the first has had
	// its chance: a relay woken by it too would have claimed twice, the second time finding
	// nothing.
	notify(outbox.SenderOf(r.ob))
	notify("another process")
	testenv.WaitFor(t, 5*time.Second, "the row published on another process's NOTIFY", func() bool { return r.streamState(t).Msgs == 1 })
	testenv.WaitFor(t, 5*time.Second, "the relay's claims ended", func() bool { return outbox.ClaimsEnded(relay) == outbox.Claims(relay) })
	if n := outbox.Claims(relay); n != 2 {
		t.Errorf("%d claims, want 2 (the first drain, another process's NOTIFY): the relay woke on its own NOTIFY", n)
	}
}

// waitListening waits until a relay's LISTEN is in place: its connection's last
// statement, in this test's own database. (A fixed sleep was not always enough on a
// loaded machine.)
func (r *rig) waitListening(t *testing.T) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, "a relay to LISTEN", func() bool {
		var listening bool
		err := r.pool.QueryRow(context.Background(),
			`SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %')`).Scan(&listening)
		return err == nil && listening
	})
}

// publishesPromptly commits two rows one after the other and checks each reaches the
// stream within a second of its commit.
func (r *rig) publishesPromptly(t *testing.T) {
	t.Helper()
	for i := 1; i <= 2; i++ {
		m := r.message("placed")
		start := time.Now()
		r.enqueue(t, context.Background(), true, m)
		testenv.WaitFor(t, time.Second, fmt.Sprintf("row %d published after its commit", i), func() bool { return r.streamState(t).Msgs == uint64(i) })
		t.Logf("row %d published %s after commit", i, time.Since(start).Round(time.Millisecond))
		if id := r.streamMsg(t, uint64(i)).Header.Get(jetstream.MsgIDHeader); id != m.EventID {
			t.Errorf("message %d is %s, want %s", i, id, m.EventID)
		}
		time.Sleep(100 * time.Millisecond) // the relay is back to waiting
	}
}

// TestRelay_SeveralRelaysPublishEachRowOnce: replicas share one table. JetStream's duplicate
// window would hide a row published twice from the stream's count, so a plain NATS
// subscription, which sees every publish, counts them.
func TestRelay_SeveralRelaysPublishEachRowOnce(t *testing.T) {
	const rows, relays = 500, 3
	r := newRig(t, testenv.NATS(t))

	var mu sync.Mutex
	seen := map[string]int{}
	marker := make(chan struct{})
	sub, err := r.nc.Subscribe(r.prefix+".orders.>", func(m *nats.Msg) {
		if m.Header.Get("Loudly-Test-Marker") != "" {
			close(marker)
			return //silentcheck:ok the test's own end marker, on a core NATS subscription (nothing to settle)
		}
		mu.Lock()
		seen[m.Header.Get(jetstream.MsgIDHeader)]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	msgs := make([]outbox.Message, rows)
	for i := range msgs {
		msgs[i] = r.message("placed")
	}
	r.enqueue(t, context.Background(), true, msgs...)

	// Each relay is a replica: its own pool, telemetry and outbox on the same table.
	captures := make([]*telemetrytest.Capture, relays)
	running := make([]*outbox.Relay, relays)
	for i := range captures {
		captures[i] = telemetrytest.New(t, fmt.Sprintf("order-%d", i))
		pool := r.newPool(t)
		ob, err := outbox.New(table, pool, captures[i].Telemetry)
		if err != nil {
			t.Fatal(err)
		}
		relay, err := outbox.NewRelay(ob, pool, outbox.JetStream(r.js), outbox.RelayConfig{BatchSize: 20, PollInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		running[i] = relay
		runUntilCleanup(t, relay)
	}

	testenv.WaitFor(t, 20*time.Second, "every row to be published", func() bool {
		n, _, err := r.relay(t).Backlog(context.Background())
		return err == nil && n == 0
	})
	testenv.WaitFor(t, 5*time.Second, "every publish to reach the subscriber", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == rows
	})
	// A second publish of a row could only come from a claim under way when the last row
	// was marked sent. Once every claim begun by then has ended, its publishes were all
	// sent on r.nc, the connection the relays share; a marker sent on it afterwards
	// reaches the subscriber after them. (The marker repeats an event id, so the stream's
	// duplicate window keeps it out of the stream.)
	begun := make([]int64, relays)
	for i, relay := range running {
		begun[i] = outbox.Claims(relay)
	}
	testenv.WaitFor(t, 5*time.Second, "the claims under way to end", func() bool {
		for i, relay := range running {
			if outbox.ClaimsEnded(relay) < begun[i] {
				return false
			}
		}
		return true
	})
	mark := nats.NewMsg(r.prefix + ".orders.placed")
	mark.Header.Set("Loudly-Test-Marker", "1")
	mark.Header.Set(jetstream.MsgIDHeader, msgs[0].EventID)
	if err := r.nc.PublishMsg(mark); err != nil {
		t.Fatal(err)
	}
	select {
	case <-marker:
	case <-time.After(5 * time.Second):
		t.Fatal("the marker did not reach the subscriber")
	}

	mu.Lock()
	for _, m := range msgs {
		if seen[m.EventID] != 1 {
			t.Errorf("event %s was published %d times, want once", m.EventID, seen[m.EventID])
		}
	}
	if len(seen) != rows {
		t.Errorf("subscriber saw %d distinct events, want %d", len(seen), rows)
	}
	mu.Unlock()
	if n := r.streamState(t).Msgs; n != rows {
		t.Errorf("stream holds %d messages, want %d", n, rows)
	}
	var total int64
	var split []int64
	for _, c := range captures {
		n := c.CounterValue(t, "loudly.outbox.published", map[string]string{"table": table})
		total += n
		split = append(split, n)
	}
	if total != rows {
		t.Errorf("relays counted %d publishes (%v), want %d", total, split, rows)
	}
	t.Logf("rows published per relay: %v", split)
}

// TestRelay_NATSDown: while the broker is away rows are kept, retried and recorded as
// retry decisions; when it is back every row is published.
func TestRelay_NATSDown(t *testing.T) {
	srv := testenv.EmbeddedNATS(t)
	r := newRig(t, srv.URL())
	r.run(t, outbox.RelayConfig{PubAckWait: 300 * time.Millisecond, PollInterval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})

	srv.Stop()
	msgs := []outbox.Message{r.message("placed"), r.message("placed"), r.message("placed")}
	ctx, span := r.tel.Tracer().Start(context.Background(), "POST /v1/orders")
	r.enqueue(t, ctx, true, msgs...)
	span.End()

	testenv.WaitFor(t, 10*time.Second, "every row to have failed an attempt", func() bool {
		for _, m := range msgs {
			if row := r.row(t, m.EventID); row.attempts == 0 || row.lastError == nil {
				return false
			}
		}
		return true
	})

	t.Run("rows keep their failure and stay in the backlog", func(t *testing.T) {
		for _, m := range msgs {
			row := r.row(t, m.EventID)
			if row.sentAt != nil || row.lastError == nil || *row.lastError == "" {
				t.Errorf("row %s: sent_at %v, last_error %v; want unsent with the error", m.EventID, row.sentAt, row.lastError)
			}
		}
		if n, _, err := r.relay(t).Backlog(context.Background()); err != nil || n != int64(len(msgs)) {
			t.Errorf("Backlog = %d, %v; want %d", n, err, len(msgs))
		}
	})

	t.Run("each failed publish is a retry decision in the row's trace", func(t *testing.T) {
		for _, m := range msgs {
			lines := r.tel.Decisions(map[string]string{"stage": "outbox", "outcome": "retry", "reason": "publish_failed", "event_id": m.EventID})
			if len(lines) == 0 {
				t.Errorf("no retry decision logged for %s", m.EventID)
				continue
			}
			if lines[0]["trace_id"] != span.SpanContext().TraceID().String() || lines[0]["error"] == nil {
				t.Errorf("retry decision %v: want trace %s and the error", lines[0], span.SpanContext().TraceID())
			}
		}
		labels := map[string]string{"stage": "outbox", "outcome": "retry", "reason": "publish_failed", "event_type": msgs[0].Subject}
		points := r.tel.Counter(t, "loudly.decisions", labels)
		var n int64
		exemplar := false
		tid := span.SpanContext().TraceID()
		for _, p := range points {
			n += p.Value
			for _, ex := range p.Exemplars {
				exemplar = exemplar || bytes.Equal(ex.TraceID, tid[:])
			}
		}
		if n < int64(len(msgs)) || !exemplar {
			t.Errorf("loudly.decisions%v = %d (exemplar in the trace: %v), want at least %d with one", labels, n, exemplar, len(msgs))
		}
	})

	srv.Start()
	testenv.WaitFor(t, 15*time.Second, "every row to be published after the broker is back", func() bool {
		n, _, err := r.relay(t).Backlog(context.Background())
		return err == nil && n == 0
	})
	t.Run("after the restart every row is in the stream once", func(t *testing.T) {
		if n := r.streamState(t).Msgs; n != uint64(len(msgs)) {
			t.Errorf("stream holds %d messages, want %d", n, len(msgs))
		}
	})
}

func TestRelay_Backlog(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	relay := r.relay(t)
	ctx := context.Background()

	t.Run("an empty outbox has no backlog", func(t *testing.T) {
		n, age, err := relay.Backlog(ctx)
		if err != nil || n != 0 || age != 0 {
			t.Errorf("Backlog = %d, %s, %v; want 0, 0", n, age, err)
		}
	})

	msgs := []outbox.Message{r.message("placed"), r.message("placed"), r.message("placed")}
	r.enqueue(t, ctx, true, msgs...)
	if _, err := r.pool.Exec(ctx, `UPDATE `+table+` SET created_at = now() - interval '90 seconds' WHERE event_id = $1`, msgs[1].EventID); err != nil {
		t.Fatal(err)
	}

	t.Run("unsent rows are counted, aged by the oldest", func(t *testing.T) {
		n, age, err := relay.Backlog(ctx)
		if err != nil || n != 3 || age < 90*time.Second || age > 100*time.Second {
			t.Errorf("Backlog = %d, %s, %v; want 3, about 90s", n, age, err)
		}
		rm := r.tel.Collect(t)
		if v, ok := gauge[int64](rm, "loudly.outbox.backlog"); !ok || v != 3 {
			t.Errorf("loudly.outbox.backlog = %v (found: %v), want 3", v, ok)
		}
		if v, ok := gauge[float64](rm, "loudly.outbox.oldest.age"); !ok || v < 90 || v > 100 {
			t.Errorf("loudly.outbox.oldest.age = %v (found: %v), want about 90", v, ok)
		}
	})

	t.Run("published rows leave the backlog", func(t *testing.T) {
		if n, err := relay.PublishBatch(ctx); err != nil || n != 3 {
			t.Fatalf("PublishBatch = %d, %v; want 3 rows", n, err)
		}
		n, age, err := relay.Backlog(ctx)
		if err != nil || n != 0 || age != 0 {
			t.Errorf("Backlog = %d, %s, %v; want 0, 0", n, age, err)
		}
	})
}

// rig is a fresh database with the outbox table, a stream for its subjects, and a
// telemetry capture.
type rig struct {
	tel    *telemetrytest.Capture
	dsn    string
	pool   *pgxpool.Pool
	nc     *nats.Conn
	js     jetstream.JetStream
	ob     *outbox.Outbox
	prefix string
	stream string
	idle   *outbox.Relay
}

func newRig(t *testing.T, natsURL string) *rig {
	t.Helper()
	r := &rig{tel: telemetrytest.New(t, "order"), dsn: testenv.Postgres(t), prefix: testenv.Prefix(t)}
	r.stream = r.prefix + "_ORDERS"
	r.pool = r.newPool(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if r.ob, err = outbox.New(table, r.pool, r.tel.Telemetry); err != nil {
		t.Fatal(err)
	}
	if err := r.ob.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	r.nc, err = nats.Connect(natsURL, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nc.Close)
	if r.js, err = jetstream.New(r.nc); err != nil {
		t.Fatal(err)
	}
	if _, err := r.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: r.stream, Subjects: []string{r.prefix + ".orders.>"}, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), r.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func (r *rig) message(kind string) outbox.Message {
	id := uuid.NewString()
	return outbox.Message{EventID: id, Subject: r.prefix + ".orders." + kind, Payload: []byte(`{"id":"` + id + `"}`)}
}

// enqueue writes msgs in one transaction, committed or rolled back.
func (r *rig) enqueue(t *testing.T, ctx context.Context, commit bool, msgs ...outbox.Message) {
	t.Helper()
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	for _, m := range msgs {
		if err := r.ob.Enqueue(ctx, tx, m); err != nil {
			t.Fatal(err)
		}
	}
	if commit {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		r.ob.Notify()
	}
}

// relay returns the rig's one idle relay, for Backlog and PublishBatch; it registers
// its backlog gauges once.
func (r *rig) relay(t *testing.T) *outbox.Relay {
	t.Helper()
	if r.idle == nil {
		r.idle = r.relayWith(t, outbox.RelayConfig{})
	}
	return r.idle
}

func (r *rig) relayWith(t *testing.T, cfg outbox.RelayConfig) *outbox.Relay {
	t.Helper()
	return r.relayThrough(t, outbox.JetStream(r.js), cfg)
}

func (r *rig) relayThrough(t *testing.T, pub outbox.Publisher, cfg outbox.RelayConfig) *outbox.Relay {
	t.Helper()
	relay, err := outbox.NewRelay(r.ob, r.pool, pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return relay
}

// run runs a relay on the rig's outbox until the test ends.
func (r *rig) run(t *testing.T, cfg outbox.RelayConfig) {
	t.Helper()
	runUntilCleanup(t, r.relayWith(t, cfg))
}

func runUntilCleanup(t *testing.T, relay *outbox.Relay) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("relay Run = %v, want nil after cancellation", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("relay Run did not return after cancellation")
		}
	})
}

func (r *rig) streamState(t *testing.T) jetstream.StreamState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

func (r *rig) waitForStream(t *testing.T, n uint64) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, fmt.Sprintf("%d messages in the stream", n), func() bool { return r.streamState(t).Msgs >= n })
}

func (r *rig) streamMsg(t *testing.T, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, r.stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *rig) spanNamed(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range r.tel.Spans() {
		if s.Name() == name {
			return s
		}
	}
	var names []string
	for _, s := range r.tel.Spans() {
		names = append(names, s.Name())
	}
	t.Fatalf("no span %q among %s", name, strings.Join(names, ", "))
	return nil
}

type outboxRow struct {
	attempts  int
	lastError *string
	sentAt    *time.Time
}

func (r *rig) row(t *testing.T, eventID string) outboxRow {
	t.Helper()
	var x outboxRow
	err := r.pool.QueryRow(context.Background(), `SELECT attempts, last_error, sent_at FROM `+table+` WHERE event_id = $1`, eventID).
		Scan(&x.attempts, &x.lastError, &x.sentAt)
	if errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("no outbox row for %s", eventID)
	}
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// gauge returns the value of the first point of the gauge named name.
func gauge[N int64 | float64](rm metricdata.ResourceMetrics, name string) (N, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[N]); ok && m.Name == name && len(g.DataPoints) > 0 {
				return g.DataPoints[0].Value, true
			}
		}
	}
	return 0, false
}

// A publisher decorator (how a drill stalls the relay) holds rows back while it refuses,
// and they go out once it lets them through.
func TestRelay_RecordsTheStreamSequenceAndHonoursAPublisherDecorator(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	var paused atomic.Bool
	paused.Store(true)
	var refused atomic.Int64
	inner := outbox.JetStream(r.js)
	stall := outbox.PublisherFunc(func(ctx context.Context, msg *nats.Msg, eventID string) (jetstream.PubAckFuture, error) {
		if paused.Load() {
			refused.Add(1)
			return nil, errors.New("paused")
		}
		return inner.Publish(ctx, msg, eventID)
	})
	runUntilCleanup(t, r.relayThrough(t, stall, outbox.RelayConfig{PollInterval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}))
	m := r.message("placed")
	r.enqueue(t, context.Background(), true, m)
	// The relay tried and was refused twice (the second after its backoff), so it had its
	// chances to publish around the decorator.
	testenv.WaitFor(t, 5*time.Second, "two publishes refused by the decorator", func() bool { return refused.Load() >= 2 })
	if n := r.streamState(t).Msgs; n != 0 {
		t.Fatalf("a paused relay published %d messages", n)
	}
	paused.Store(false)
	r.waitForStream(t, 1)
	var seq *int64
	testenv.WaitFor(t, 5*time.Second, "the row marked sent", func() bool {
		err := r.pool.QueryRow(context.Background(), `SELECT stream_seq FROM `+table+` WHERE event_id = $1 AND sent_at IS NOT NULL`, m.EventID).Scan(&seq)
		return err == nil
	})
	if seq == nil || *seq != 1 {
		t.Fatalf("stream_seq %v, want 1", seq)
	}
}

// A relay claims the next batch while the first still waits for its broker: with
// Concurrency 3, batches of 2 and a publisher that holds every call, three batches are in
// flight (each held in its first publish); one batch at a time would stop at one. Once
// the publisher lets go, every row is published once.
func TestRelay_BatchesInFlightTogether(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	inner := outbox.JetStream(r.js)
	release := make(chan struct{})
	var calls atomic.Int32
	held := outbox.PublisherFunc(func(ctx context.Context, msg *nats.Msg, eventID string) (jetstream.PubAckFuture, error) {
		calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return inner.Publish(ctx, msg, eventID)
	})
	var msgs []outbox.Message
	for range 7 {
		msgs = append(msgs, r.message("placed"))
	}
	r.enqueue(t, context.Background(), true, msgs...)
	runUntilCleanup(t, r.relayThrough(t, held, outbox.RelayConfig{BatchSize: 2, Concurrency: 3, PollInterval: 50 * time.Millisecond}))
	testenv.WaitFor(t, 5*time.Second, "three batches of two in flight", func() bool { return calls.Load() == 3 })
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 3 {
		// Each worker is held in its batch's first publish: three workers, three calls.
		t.Fatalf("%d publishes under way, want 3 (one per worker, each in its own batch)", n)
	}
	close(release)
	r.waitForStream(t, 7)
	testenv.WaitFor(t, 5*time.Second, "every row marked sent", func() bool {
		var unsent int
		err := r.pool.QueryRow(context.Background(), `SELECT count(*) FROM `+table+` WHERE sent_at IS NULL`).Scan(&unsent)
		return err == nil && unsent == 0
	})
	if n := r.streamState(t).Msgs; n != 7 {
		t.Fatalf("%d messages in the stream, want 7", n)
	}
}

// A wake-up for commits that a claim began after claims nothing more: that claim's
// snapshot had their rows. Two workers are each held in a batch's publish (A, B) while C
// and D commit, each waking the relay; the first worker let go claims C and D together,
// and the second, let go after, drops its wake-up instead of claiming an empty batch.
// Claims: the relay's first (empty) at its start, A, B, then C with D — four. Without
// the check, the second wake-up was a fifth claim, found empty.
func TestRelay_AWakeUpACoveringClaimAnsweredClaimsNothing(t *testing.T) {
	r := newRig(t, testenv.NATS(t))
	inner := outbox.JetStream(r.js)
	publishing := make(chan string, 8)
	release := map[string]chan struct{}{}
	var mu sync.Mutex
	gate := func(id string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if release[id] == nil {
			release[id] = make(chan struct{})
		}
		return release[id]
	}
	held := outbox.PublisherFunc(func(ctx context.Context, msg *nats.Msg, eventID string) (jetstream.PubAckFuture, error) {
		publishing <- eventID
		select {
		case <-gate(eventID):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return inner.Publish(ctx, msg, eventID)
	})
	relay := r.relayThrough(t, held, outbox.RelayConfig{Concurrency: 2, PollInterval: time.Minute})
	runUntilCleanup(t, relay)
	// Its first claim (of rows committed before it started) must be over before A commits:
	// a claim whose snapshot is taken after A's commit would take A itself, and the claims
	// counted below would be one fewer (CI on a loaded machine saw 3).
	testenv.WaitFor(t, 5*time.Second, "the relay's first claim, ended", func() bool {
		return outbox.Claims(relay) == 1 && outbox.ClaimsEnded(relay) == 1
	})
	ctx := context.Background()
	expect := func(ids ...string) {
		t.Helper()
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		for range ids {
			select {
			case id := <-publishing:
				if !want[id] {
					t.Fatalf("publishing %s, want one of %v", id, ids)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no publish of %v under way", ids)
			}
		}
	}
	a, b, c, d := r.message("placed"), r.message("placed"), r.message("placed"), r.message("placed")
	r.enqueue(t, ctx, true, a)
	expect(a.EventID) // one worker held in A's batch
	r.enqueue(t, ctx, true, b)
	expect(b.EventID) // the other in B's
	r.enqueue(t, ctx, true, c)
	time.Sleep(50 * time.Millisecond) // the relay passes C's wake-up on before D commits
	r.enqueue(t, ctx, true, d)
	time.Sleep(50 * time.Millisecond)
	close(gate(a.EventID))
	expect(c.EventID) // A's worker claimed C and D (in id order), and is held in C's publish
	close(gate(b.EventID))
	time.Sleep(100 * time.Millisecond) // B's worker, let go, takes D's wake-up
	close(gate(c.EventID))
	expect(d.EventID)
	close(gate(d.EventID))
	r.waitForStream(t, 4)
	// A NOTIFY from another process wakes the relay once more: wake-ups are taken in the
	// order they come, so once the claim it causes has ended, any wake-up queued before it
	// has had its claim too. Five claims, not six.
	if _, err := r.pool.Exec(ctx, `SELECT pg_notify($1, 'another process')`, outbox.ChannelOf(r.ob)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "the NOTIFY's claim, ended", func() bool {
		return outbox.Claims(relay) >= 5 && outbox.ClaimsEnded(relay) == outbox.Claims(relay)
	})
	if n := outbox.Claims(relay); n != 5 {
		t.Errorf("%d claims, want 5: the first, A, B, C with D, and the NOTIFY's", n)
	}
	select {
	case id := <-publishing:
		t.Errorf("%s published again", id)
	default:
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/internal/testenv"
	"loudly/loadtest/load"
	"loudly/pkg/broker"
	"loudly/services/events"
	"loudly/services/inventory/inventory"
)

// BenchmarkBacklogDrain is `make bench-drain`: BENCH_DRAIN_EVENTS (100,000) order.placed
// events of the standard mix are waiting in the ORDERS stream before the inventory service
// starts; it reports how fast inventory works through them, from its first delivery until
// its durable consumer has nothing pending and nothing awaiting an ack, with telemetry
// fully on. It does so twice in the same run, each time on a fresh stream and database:
// with the service settings in the environment (passed through as in `make bench`; none
// means the services' defaults), then with CONSUMER_BATCH_SIZE=1, and prints the speed-up
// of the first over the second. Every event must be decided exactly once (one row in
// inventory.reservations each), or the benchmark fails.
func BenchmarkBacklogDrain(b *testing.B) {
	n := benchInt(b, "BENCH_DRAIN_EVENTS", 100_000)
	timeout := benchDuration(b, "BENCH_DRAIN_TIMEOUT", 30*time.Minute)
	settings := serviceSettings(os.Environ())
	bin := buildServices(b)
	line := drainLine{Events: n, Env: settings}
	defer func() { fmt.Println(line) }()
	for _, c := range []struct {
		name     string
		settings []string
		into     *drainRun
	}{
		{"settings=given", settings, &line.Given},
		{"batch_size=1", append(slices.Clone(settings), "CONSUMER_BATCH_SIZE=1"), &line.One},
	} {
		if !b.Run(c.name, func(b *testing.B) { *c.into = drain(b, bin, n, timeout, c.settings) }) {
			b.FailNow()
		}
	}
}

// drain publishes the backlog to a fresh JetStream server, starts inventory on a fresh
// database with the settings, and measures how it works through the backlog.
func drain(b *testing.B, bin string, n int, timeout time.Duration, settings []string) drainRun {
	natsURL := testenv.EmbeddedNATS(b).URL()
	dsn := testenv.Postgres(b)
	nc, err := nats.Connect(natsURL, nats.Name("loudly-bench-drain"))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if err := broker.EnsureStreams(b.Context(), js, events.Streams); err != nil {
		b.Fatal(err)
	}
	published := time.Now()
	if err := publishBacklog(b.Context(), nc, n, rand.Uint64()); err != nil {
		b.Fatal(err)
	}
	b.Logf("published %d order.placed events in %s", n, time.Since(published).Round(time.Millisecond))

	env := append([]string{"DATABASE_URL=" + dsn, "NATS_URL=" + natsURL, "LOG_LEVEL=info", "SHUTDOWN_TIMEOUT=10s"}, telemetryOn(b, settings).env...)
	startService(b, filepath.Join(bin, "inventory"), append(env, settings...)) // settings last: they win
	d, err := waitDrained(b.Context(), js, events.StreamOrders, inventory.Consumer, timeout)
	if err != nil {
		b.Fatal(err)
	}
	r := drainRun{Took: d.took, Redelivered: d.redelivered}

	// The accounting: every event decided once, none twice, none skipped.
	conn, err := pgx.Connect(b.Context(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(b.Context(), `SELECT count(*) FROM inventory.reservations`).Scan(&r.Decided); err != nil {
		b.Fatal(err)
	}
	if r.Decided != n {
		b.Errorf("inventory decided %d events, want every one of the %d published", r.Decided, n)
	}
	described := strings.Join(settings, " ")
	if described == "" {
		described = "default settings"
	}
	b.Logf("%s: %d events decided in %s (%.1f/s), %d redelivered", described, r.Decided,
		r.Took.Round(time.Millisecond), r.PerSec(), r.Redelivered)
	b.ReportMetric(r.PerSec(), "events/s")
	return r
}

// drainRun is how inventory worked through one backlog.
type drainRun struct {
	Took        time.Duration // first delivery to nothing pending
	Decided     int           // rows in inventory.reservations
	Redelivered int           // messages the consumer delivered more than once
}

func (r drainRun) PerSec() float64 {
	if r.Took <= 0 {
		return 0
	}
	return float64(r.Decided) / r.Took.Seconds()
}

// drainLine is what `make bench-drain` found, printed as one line.
type drainLine struct {
	Events int
	Given  drainRun // with the settings given
	One    drainRun // with CONSUMER_BATCH_SIZE=1
	Env    []string
}

func (l drainLine) String() string {
	env := "default"
	if len(l.Env) > 0 {
		env = strings.Join(l.Env, ",")
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	return fmt.Sprintf("drain: events=%d drained_per_s=%s batch1_drained_per_s=%s speedup=%s decided=%d/%d redelivered=%d/%d seconds=%s/%s env=%s",
		l.Events, f(l.Given.PerSec()), f(l.One.PerSec()), strconv.FormatFloat(ratio(l.Given.PerSec(), l.One.PerSec()), 'f', 2, 64),
		l.Given.Decided, l.One.Decided, l.Given.Redelivered, l.One.Redelivered, f(l.Given.Took.Seconds()), f(l.One.Took.Seconds()), env)
}

// orderPlaced is the order.placed event the order service would publish for the order:
// built and validated with the contract's own constructor, as services/order does, so the
// backlog is exactly what the services exchange. It is the one place the bench builds an
// event.
func orderPlaced(orderID string, req load.OrderRequest, now time.Time) (eventID string, payload []byte, err error) {
	env, payload, err := events.OrderPlacedEvent.New(orderID, events.OrderPlaced{CustomerID: req.CustomerID, Lines: req.Lines}, now)
	return env.ID, payload, err
}

// backlogInFlight bounds the publishes awaiting their PubAck.
const backlogInFlight = 4096

// publishBacklog publishes n order.placed events of the standard mix (orders as the
// loadtest places them, no poison) to the ORDERS stream, asynchronously with at most
// backlogInFlight awaiting their PubAck, each under its event id as Nats-Msg-Id. It
// returns once the broker has acknowledged every one; a publish that was not
// acknowledged is sent again under the same id, which the stream's duplicate window
// stores at most once.
func publishBacklog(ctx context.Context, nc *nats.Conn, n int, seed uint64) error {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(backlogInFlight),
		jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		return err
	}
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		req := load.NewOrder(seed, i+1)
		id, payload, err := orderPlaced(uuid.NewString(), req, time.Now())
		if err != nil {
			return err
		}
		// Blocks, rather than fails, while backlogInFlight publishes await their PubAck.
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: events.SubjectOrderPlaced, Data: payload},
			jetstream.WithMsgID(id), jetstream.WithStallWait(time.Minute))
		if err != nil {
			return fmt.Errorf("publish event %d of %d: %w", i+1, n, err)
		}
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	var again int
	for _, f := range futures {
		select {
		case <-f.Ok():
			continue
		case <-f.Err():
		}
		again++
		m := f.Msg()
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := js.PublishMsg(actx, m, jetstream.WithMsgID(m.Header.Get(jetstream.MsgIDHeader)))
		cancel()
		if err != nil {
			return fmt.Errorf("publish %s again: %w", m.Header.Get(jetstream.MsgIDHeader), err)
		}
	}
	info, err := js.Stream(ctx, events.StreamOrders)
	if err != nil {
		return err
	}
	if got := info.CachedInfo().State.Msgs; got != uint64(n) {
		return fmt.Errorf("stream %s holds %d messages after publishing %d (%d published again)", events.StreamOrders, got, n, again)
	}
	return nil
}

// drained is how a durable consumer worked through its backlog.
type drained struct {
	took        time.Duration
	redelivered int
}

// waitDrained polls the durable consumer until it exists and has delivered something,
// then until nothing is pending and nothing awaits an ack. took runs from the first poll
// that saw a delivery to the first that saw it drained, so each end is late by at most
// one poll interval (100ms).
func waitDrained(ctx context.Context, js jetstream.JetStream, stream, name string, timeout time.Duration) (drained, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var start, lastReport time.Time
	for {
		ci, err := consumerInfo(ctx, js, stream, name)
		now := time.Now()
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound): // not started yet
		case err != nil:
			return drained{}, fmt.Errorf("consumer %s on %s: %w", name, stream, err)
		case start.IsZero() && ci.Delivered.Consumer > 0:
			start = now
		case !start.IsZero() && ci.NumPending == 0 && ci.NumAckPending == 0:
			return drained{took: now.Sub(start), redelivered: ci.NumRedelivered}, nil
		}
		if err == nil && now.Sub(lastReport) >= 10*time.Second {
			fmt.Fprintf(os.Stderr, "draining: %d pending, %d awaiting ack, %d redelivered\n", ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
			lastReport = now
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return drained{}, fmt.Errorf("consumer %s on %s not drained after %s: %w", name, stream, timeout, ctx.Err())
		}
	}
}

func consumerInfo(ctx context.Context, js jetstream.JetStream, stream, name string) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(ctx, stream, name)
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}

func TestDrainLine_String(t *testing.T) {
	l := drainLine{Events: 100000,
		Given: drainRun{Took: 20 * time.Second, Decided: 100000, Redelivered: 2},
		One:   drainRun{Took: 125 * time.Second, Decided: 100000},
		Env:   []string{"CONSUMER_BATCH_SIZE=64"}}
	want := "drain: events=100000 drained_per_s=5000.0 batch1_drained_per_s=800.0 speedup=6.25 decided=100000/100000" +
		" redelivered=2/0 seconds=20.0/125.0 env=CONSUMER_BATCH_SIZE=64"
	if got := l.String(); got != want {
		t.Errorf("drain line:\n got %s\nwant %s", got, want)
	}
	if got := (drainLine{Events: 10}).String(); !strings.Contains(got, " drained_per_s=0.0 ") || !strings.Contains(got, " speedup=0.00 ") ||
		!strings.HasSuffix(got, " env=default") {
		t.Errorf("drain line of a run that never drained = %s", got)
	}
}

func TestOrderPlaced_IsWhatTheServicesExchange(t *testing.T) {
	req := load.NewOrder(7, 1)
	orderID := uuid.NewString()
	id, payload, err := orderPlaced(orderID, req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Decode(payload)
	if err != nil {
		t.Fatalf("the inventory consumer's decoder refuses the event: %v\n%s", err, payload)
	}
	data, err := events.OrderPlacedEvent.Decode(env)
	if err != nil {
		t.Fatal(err)
	}
	if env.ID != id || env.Type != events.TypeOrderPlaced || env.Key != orderID ||
		data.CustomerID != req.CustomerID || len(data.Lines) != len(req.Lines) {
		t.Errorf("event = %+v with %+v, want id %s, type %s, order %s and the order's %d lines", env, data, id, events.TypeOrderPlaced, orderID, len(req.Lines))
	}
}

func TestPublishBacklog(t *testing.T) {
	natsURL := testenv.EmbeddedNATS(t).URL()
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := broker.EnsureStreams(t.Context(), js, events.Streams); err != nil {
		t.Fatal(err)
	}
	const n = 3 * backlogInFlight / 2 // past the in-flight bound
	if err := publishBacklog(t.Context(), nc, n, 1); err != nil {
		t.Fatal(err)
	}
	// Every message a valid order.placed, each under its own event id.
	c, err := js.OrderedConsumer(t.Context(), events.StreamOrders, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(n + 1)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for m := range batch.Messages() {
		env, err := events.Decode(m.Data())
		if err != nil {
			t.Fatalf("message %d: %v", len(seen)+1, err)
		}
		if msgID := m.Headers().Get(jetstream.MsgIDHeader); msgID != env.ID || seen[msgID] {
			t.Fatalf("message %d: Nats-Msg-Id %q for event %s (seen before: %t)", len(seen)+1, msgID, env.ID, seen[msgID])
		}
		seen[env.ID] = true
	}
	if len(seen) != n {
		t.Errorf("read %d events back, want %d", len(seen), n)
	}
}

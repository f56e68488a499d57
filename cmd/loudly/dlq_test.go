package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/internal/testenv"
	"loudly/pkg/broker"
	"loudly/pkg/deadletter"
	"loudly/pkg/envelope"
	"loudly/services/events"
)

const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// garbage is a poison payload that is not JSON and tries to drive the terminal.
const garbage = "\x00not json \x1b[31mred\x1b[0m"

// dlqFixture is a broker holding three dead letters:
//
//	1 a valid order.placed event whose original is still in ORDERS (and in its duplicate
//	  window), given up after retries (consumer inventory, reason db_unavailable)
//	2 an event of an unknown version, still carrying an order_id (inventory, unknown_version)
//	3 a payload that is not JSON at all (order-results, malformed_json)
type dlqFixture struct {
	url       string
	js        jetstream.JetStream
	event     envelope.Envelope
	eventData []byte
	poisonID  string // order_id of letter 2
}

// newBroker returns the URL of a server of the test's own, and a JetStream context on
// it. The server is always embedded, never the shared NATS_URL one: the dead-letter and
// ORDERS streams have fixed names, so these tests could not isolate themselves from other
// tests (or from anyone's real dead letters, which redrive would move) by prefixing names.
func newBroker(t *testing.T, ensureStreams bool) (string, jetstream.JetStream) {
	t.Helper()
	url := testenv.EmbeddedNATS(t).URL()
	js := testenv.JetStream(t, url)
	if ensureStreams {
		if err := broker.EnsureStreams(context.Background(), js, events.Streams); err != nil {
			t.Fatal(err)
		}
	}
	return url, js
}

func newDLQFixture(t *testing.T) *dlqFixture {
	t.Helper()
	ctx := context.Background()
	f := &dlqFixture{poisonID: uuid.NewString()}
	f.url, f.js = newBroker(t, true)
	now := time.Now()

	var err error
	f.event, f.eventData, err = events.New(events.TypeOrderPlaced, uuid.NewString(), events.OrderPlaced{
		CustomerID: "c-1", Lines: []events.Line{{SKU: "SKU-1", Quantity: 2}},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	orig := nats.NewMsg(events.SubjectOrderPlaced)
	orig.Data = f.eventData
	orig.Header.Set("traceparent", traceparent)
	ack, err := f.js.PublishMsg(ctx, orig, jetstream.WithMsgID(f.event.ID))
	if err != nil {
		t.Fatal(err)
	}

	poison := `{"id":"` + uuid.NewString() + `","type":"order.placed","version":7,"occurred_at":"2026-05-01T10:00:00Z","key":"` +
		f.poisonID + `","data":{"customer_id":"c-2"}}`
	for _, l := range []deadletter.Letter{
		{
			Subject: events.SubjectOrderPlaced, Stream: events.StreamOrders, StreamSeq: ack.Sequence,
			Consumer: "inventory", Outcome: "dead_lettered", Reason: "db_unavailable",
			Error:      "retries exhausted after 10 deliveries: reserve stock: dial tcp 127.0.0.1:5432: connect: connection refused",
			Deliveries: 10, Time: now,
			Headers: nats.Header{jetstream.MsgIDHeader: {f.event.ID}, "traceparent": {traceparent}},
			Data:    f.eventData,
		},
		{
			Subject: events.SubjectOrderPlaced, Stream: events.StreamOrders, StreamSeq: ack.Sequence + 1,
			Consumer: "inventory", Outcome: "invalid", Reason: envelope.ReasonUnknownVersion,
			Error: "unknown_version: version 7, this consumer knows 1", Deliveries: 1, Time: now,
			Headers: nats.Header{jetstream.MsgIDHeader: {"poison-1"}},
			Data:    []byte(poison),
		},
		{
			Subject: events.SubjectInventoryReserved, Stream: events.StreamInventory, StreamSeq: 1,
			Consumer: "order-results", Outcome: "invalid", Reason: envelope.ReasonMalformed,
			Error: "malformed_json: envelope: invalid character", Deliveries: 1, Time: now,
			Data: []byte(garbage),
		},
	} {
		if err := deadletter.Publish(ctx, f.js, l); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// dlq runs "loudly dlq args... -nats URL".
func (f *dlqFixture) dlq(t *testing.T, args ...string) result {
	t.Helper()
	return loudly(t, append(append([]string{"dlq"}, args...), "-nats", f.url)...)
}

// rows returns the table rows of list or stats output, keyed by their first column.
func rows(t *testing.T, stdout string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	for _, line := range lines[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			out[f[0]] = f
		}
	}
	return out
}

func TestDLQList(t *testing.T) {
	f := newDLQFixture(t)

	t.Run("table", func(t *testing.T) {
		r := f.dlq(t, "list")
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		t.Logf("\n%s", r.stdout)
		if h := strings.Fields(strings.SplitN(r.stdout, "\n", 2)[0]); strings.Join(h, " ") !=
			"SEQ TIME CONSUMER OUTCOME REASON DELIVERIES SUBJECT MSG-ID KEY ERROR" {
			t.Errorf("header = %v", h)
		}
		got := rows(t, r.stdout)
		if len(got) != 3 {
			t.Fatalf("%d rows, want 3:\n%s", len(got), r.stdout)
		}
		for seq, want := range map[string][]string{
			// consumer, outcome, reason, deliveries, subject, msg id, order
			"1": {"inventory", "dead_lettered", "db_unavailable", "10", "orders.placed", f.event.ID, f.event.Key, "retries"},
			"2": {"inventory", "invalid", "unknown_version", "1", "orders.placed", "poison-1", f.poisonID, "unknown_version:"},
			"3": {"order-results", "invalid", "malformed_json", "1", "inventory.reserved", "-", "-", "malformed_json:"},
		} {
			if row := got[seq]; strings.Join(row[2:10], " ") != strings.Join(want, " ") {
				t.Errorf("row %s = %v\nwant columns 3.. = %v", seq, row, want)
			}
		}
		if strings.Contains(r.stdout, "\x1b") {
			t.Error("a payload's escape sequence reached the terminal")
		}
	})

	t.Run("json", func(t *testing.T) {
		r := f.dlq(t, "list", "-json")
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		var got []struct {
			Seq      uint64              `json:"seq"`
			Consumer string              `json:"consumer"`
			Reason   string              `json:"reason"`
			Key      string              `json:"key"`
			MsgID    string              `json:"msg_id"`
			Headers  map[string][]string `json:"headers"`
			Data     []byte              `json:"data"`
			Payload  json.RawMessage     `json:"payload"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("not a JSON array: %v\n%s", err, r.stdout)
		}
		if len(got) != 3 {
			t.Fatalf("%d letters, want 3", len(got))
		}
		if g := got[0]; g.Seq != 1 || g.Reason != "db_unavailable" || g.Key != f.event.Key || g.MsgID != f.event.ID ||
			string(g.Data) != string(f.eventData) || g.Headers["traceparent"][0] != traceparent || len(g.Payload) == 0 {
			t.Errorf("letter 1 = %+v", g)
		}
		if g := got[1]; g.Seq != 2 || g.Key != f.poisonID {
			t.Errorf("letter 2 = %+v", g)
		}
		if g := got[2]; g.Seq != 3 || g.Consumer != "order-results" || string(g.Data) != garbage || g.Payload != nil || g.Key != "" {
			t.Errorf("letter 3 = %+v", g)
		}
	})

	t.Run("limit", func(t *testing.T) {
		r := f.dlq(t, "list", "-limit", "2")
		if got := rows(t, r.stdout); r.code != exitOK || len(got) != 2 || got["1"] == nil || got["2"] == nil {
			t.Errorf("exit %d; want rows 1 and 2 only:\n%s", r.code, r.stdout)
		}
		if !strings.Contains(r.stderr, "showing 2 of 3 dead letters") {
			t.Errorf("no note on stderr of how many there are: %q", r.stderr)
		}
	})

	t.Run("empty", func(t *testing.T) {
		url, _ := newBroker(t, true)
		r := loudly(t, "dlq", "list", "-nats", url)
		if r.code != exitOK || r.stdout != "no dead letters\n" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
		r = loudly(t, "dlq", "list", "-json", "-nats", url)
		if r.code != exitOK || r.stdout != "[]\n" {
			t.Errorf("-json: exit %d, stdout %q; want []", r.code, r.stdout)
		}
	})
}

func TestDLQShow(t *testing.T) {
	f := newDLQFixture(t)

	t.Run("event payload", func(t *testing.T) {
		r := f.dlq(t, "show", "1")
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		t.Logf("\n%s", r.stdout)
		for _, want := range []string{
			"Dead letter 1 in stream DEADLETTER",
			deadletter.HeaderReason + ":", "db_unavailable",
			deadletter.HeaderDeliveries + ":",
			"connect: connection refused",
			"Nats-Msg-Id:", f.event.ID,
			"traceparent:", traceparent,
			"Event:", "valid order.placed event",
			`  "key": "` + f.event.Key + `"`, // pretty-printed
			`      "sku": "SKU-1"`,
		} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("show lacks %q", want)
			}
		}
	})

	t.Run("poison payload", func(t *testing.T) {
		r := f.dlq(t, "show", "3")
		if r.code != exitOK {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
		for _, want := range []string{"malformed_json", "not JSON", strconv.Quote(garbage), "not a valid event: malformed_json"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("show lacks %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "\x1b") {
			t.Error("a payload's escape sequence reached the terminal")
		}
	})

	t.Run("json, flag after SEQ", func(t *testing.T) {
		r := f.dlq(t, "show", "2", "-json")
		var got struct {
			Seq        uint64          `json:"seq"`
			Reason     string          `json:"reason"`
			Key        string          `json:"key"`
			EventError string          `json:"event_error"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); r.code != exitOK || err != nil {
			t.Fatalf("exit %d, %v:\n%s", r.code, err, r.stdout)
		}
		if got.Seq != 2 || got.Reason != "unknown_version" || got.Key != f.poisonID ||
			!strings.HasPrefix(got.EventError, "unknown_version") || !json.Valid(got.Payload) {
			t.Errorf("show -json = %+v", got)
		}
	})

	t.Run("unknown seq", func(t *testing.T) {
		r := f.dlq(t, "show", "99")
		if r.code != exitFailed || r.stdout != "" || !strings.Contains(r.stderr, "no dead letter 99") {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 and a message on stderr", r.code, r.stdout, r.stderr)
		}
	})
}

// ordersFrom returns a consumer of everything published on orders.placed after now, and
// the stream's message count.
func ordersFrom(t *testing.T, js jetstream.JetStream) (jetstream.Consumer, uint64) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, events.StreamOrders)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectOrderPlaced},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    info.State.LastSeq + 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, info.State.Msgs
}

func next(t *testing.T, c jetstream.Consumer) jetstream.Msg {
	t.Helper()
	m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("nothing arrived on %s: %v", events.SubjectOrderPlaced, err)
	}
	return m
}

func TestDLQRedrive(t *testing.T) {
	f := newDLQFixture(t)
	orders, before := ordersFrom(t, f.js)

	r := f.dlq(t, "redrive", "1")
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r.stdout != "redriven 1 to orders.placed\nredriven 1 letter\n" {
		t.Errorf("stdout = %q", r.stdout)
	}

	// The original payload and headers are back on the original subject. The original is
	// still within ORDERS's duplicate window under the same event id, so this also shows
	// the redrive is not swallowed as a duplicate.
	m := next(t, orders)
	if m.Subject() != events.SubjectOrderPlaced || string(m.Data()) != string(f.eventData) {
		t.Errorf("redriven %s %q, want the original %s %q", m.Subject(), m.Data(), events.SubjectOrderPlaced, f.eventData)
	}
	if h := m.Headers(); h.Get("traceparent") != traceparent || h.Get(deadletter.HeaderRedriven) != "1" {
		t.Errorf("redriven headers = %v, want the original traceparent and %s: 1", h, deadletter.HeaderRedriven)
	}
	if id := m.Headers().Get(jetstream.MsgIDHeader); id == "" || id == f.event.ID {
		t.Errorf("redriven Nats-Msg-Id = %q: want a new one, or the duplicate window would drop it", id)
	}
	s, _ := f.js.Stream(context.Background(), events.StreamOrders)
	if info, err := s.Info(context.Background()); err != nil || info.State.Msgs != before+1 {
		t.Errorf("ORDERS holds %d messages, want %d (%v)", info.State.Msgs, before+1, err)
	}

	// And the letter is gone.
	if r := f.dlq(t, "show", "1"); r.code != exitFailed {
		t.Errorf("show of a redriven letter: exit %d, want 1", r.code)
	}
	if got := rows(t, f.dlq(t, "list").stdout); got["1"] != nil || len(got) != 2 {
		t.Errorf("list after redrive has rows %v, want 2 and 3", got)
	}
	r = f.dlq(t, "redrive", "1")
	if r.code != exitFailed || !strings.Contains(r.stderr, "no dead letter 1") || !strings.Contains(r.stdout, "redriven 0 of 1 letter; 1 failed") {
		t.Errorf("second redrive: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestDLQRedriveAll(t *testing.T) {
	t.Run("filter by reason", func(t *testing.T) {
		f := newDLQFixture(t)
		orders, _ := ordersFrom(t, f.js)
		r := f.dlq(t, "redrive", "-all", "-reason", "unknown_version")
		if r.code != exitOK || r.stdout != "redriven 2 to orders.placed\nredriven 1 letter\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if m := next(t, orders); !strings.Contains(string(m.Data()), f.poisonID) {
			t.Errorf("redriven %q, want letter 2's payload", m.Data())
		}
		if got := rows(t, f.dlq(t, "list").stdout); len(got) != 2 || got["1"] == nil || got["3"] == nil {
			t.Errorf("left %v, want letters 1 and 3", got)
		}
	})

	t.Run("filter by consumer, dry run", func(t *testing.T) {
		f := newDLQFixture(t)
		r := f.dlq(t, "redrive", "-all", "-consumer", "order-results", "-dry-run")
		if r.code != exitOK || r.stdout != "would redrive 3 to inventory.reserved (consumer order-results, reason malformed_json)\nwould redrive 1 letter\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if got := rows(t, f.dlq(t, "list").stdout); len(got) != 3 {
			t.Errorf("a dry run changed the letters: %v", got)
		}
	})

	t.Run("nothing matches", func(t *testing.T) {
		f := newDLQFixture(t)
		r := f.dlq(t, "redrive", "-all", "-reason", "no_such_reason")
		if r.code != exitOK || r.stdout != "no dead letters match\n" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})

	t.Run("partial failure", func(t *testing.T) {
		f := newDLQFixture(t)
		// A letter whose subject no stream holds any more cannot be redriven.
		if err := deadletter.Publish(context.Background(), f.js, deadletter.Letter{
			Subject: "retired.subject", Stream: "RETIRED", StreamSeq: 1, Consumer: "old", Outcome: "invalid",
			Reason: "unknown_type", Time: time.Now(), Data: []byte(`{}`),
		}); err != nil {
			t.Fatal(err)
		}
		r := f.dlq(t, "redrive", "-all")
		if r.code != exitFailed {
			t.Errorf("exit %d, want 1", r.code)
		}
		if !strings.Contains(r.stdout, "redriven 3 of 4 letters; 1 failed") || !strings.Contains(r.stderr, "dead letter 4") {
			t.Errorf("stdout %q\nstderr %q", r.stdout, r.stderr)
		}
		if got := rows(t, f.dlq(t, "list").stdout); len(got) != 1 || got["4"] == nil {
			t.Errorf("left %v, want only letter 4", got)
		}
	})
}

func TestDLQStats(t *testing.T) {
	f := newDLQFixture(t)
	r := f.dlq(t, "stats")
	if r.code != exitOK {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	t.Logf("\n%s", r.stdout)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var got []string
	for _, line := range lines[:len(lines)-1] {
		if f := strings.Fields(line); len(f) >= 3 {
			got = append(got, strings.Join(f[:3], " "))
		}
	}
	want := []string{"CONSUMER REASON COUNT", "inventory db_unavailable 1", "inventory unknown_version 1", "order-results malformed_json 1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || lines[len(lines)-1] != "total 3 letters" {
		t.Errorf("stats:\n%s", r.stdout)
	}

	url, _ := newBroker(t, true)
	if r := loudly(t, "dlq", "stats", "-nats", url); r.code != exitOK || r.stdout != "no dead letters\n" {
		t.Errorf("stats of an empty stream: exit %d, %q", r.code, r.stdout)
	}
}

func TestDLQ_BadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"dlq"},
		{"dlq", "bogus"},
		{"dlq", "list", "extra"},
		{"dlq", "list", "-limit", "-1"},
		{"dlq", "list", "-limit", "many"},
		{"dlq", "list", "-bogus"},
		{"dlq", "show"},
		{"dlq", "show", "abc"},
		{"dlq", "show", "0"},
		{"dlq", "show", "1", "2"},
		{"dlq", "redrive"},
		{"dlq", "redrive", "1", "-all"},
		{"dlq", "redrive", "-reason", "x", "1"},
		{"dlq", "redrive", "-1"},
		{"dlq", "stats", "extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			// No server: a bad command line must be refused before connecting.
			r := loudly(t, append(args, "-nats", "nats://127.0.0.1:1")...)
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "Usage:") {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 and the usage on stderr only", r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestDLQ_Config(t *testing.T) {
	t.Run("NATS_URL is the default server", func(t *testing.T) {
		url, _ := newBroker(t, true)
		t.Setenv("NATS_URL", url)
		if r := loudly(t, "dlq", "list"); r.code != exitOK || r.stdout != "no dead letters\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("-nats overrides a broken NATS_URL", func(t *testing.T) {
		url, _ := newBroker(t, true)
		t.Setenv("NATS_URL", "http://wrong")
		if r := loudly(t, "dlq", "list", "-nats", url); r.code != exitOK {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("bad NATS_URL", func(t *testing.T) {
		t.Setenv("NATS_URL", "http://wrong")
		r := loudly(t, "dlq", "list")
		if r.code != exitUsage || !strings.Contains(r.stderr, "NATS_URL") {
			t.Errorf("exit %d, stderr %q; want 2 naming NATS_URL", r.code, r.stderr)
		}
	})

	t.Run("unreachable server, credentials not shown", func(t *testing.T) {
		r := loudly(t, "dlq", "list", "-nats", "nats://operator:s3cret@127.0.0.1:1")
		if r.code != exitFailed || !strings.Contains(r.stderr, "connect to NATS") || strings.Contains(r.stderr, "s3cret") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})

	t.Run("no dead-letter stream", func(t *testing.T) {
		url, _ := newBroker(t, false)
		r := loudly(t, "dlq", "list", "-nats", url)
		if r.code != exitFailed || !strings.Contains(r.stderr, "stream DEADLETTER does not exist") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// With no -nats, NATS_URL or running demo, a command names the default server it talks
// to, and refuses one with no Loudly on it (no DEADLETTER stream) instead of reporting
// "nothing there" as if all were well. A named server is not announced.
func TestDefaultNATS_IsNamedAndMustBeLoudly(t *testing.T) {
	t.Setenv("NATS_URL", "")
	t.Setenv("LOUDLY_DEMO_DIR", t.TempDir()) // no demo running there
	bare, _ := newBroker(t, false)
	withLoudly, _ := newBroker(t, true)
	runWith := func(def string, args ...string) result {
		var stdout, stderr bytes.Buffer
		c := &cli{stdout: &stdout, stderr: &stderr, getenv: os.Getenv, defaultNATS: def}
		g := top
		g.commands = commands
		return result{code: c.exit(c.runGroup(context.Background(), g, args)), stdout: stdout.String(), stderr: stderr.String()}
	}
	for _, args := range [][]string{{"drill", "status"}, {"dlq", "list"}, {"dlq", "stats"}} {
		cmd := strings.Join(args, " ")
		r := runWith(bare, args...)
		if r.code != exitFailed || r.stdout != "" || !strings.Contains(r.stderr, "using the default NATS server "+bare) ||
			!strings.Contains(r.stderr, "no Loudly at "+bare+": the server answers, but has no DEADLETTER stream") {
			t.Errorf("%s on a server with no Loudly: exit %d, stdout %q, stderr:\n%s", cmd, r.code, r.stdout, r.stderr)
		}
		r = runWith(withLoudly, args...)
		if r.code != exitOK || !strings.Contains(r.stderr, "using the default NATS server "+withLoudly) || strings.Contains(r.stderr, "no Loudly") {
			t.Errorf("%s on a Loudly's server: exit %d, stdout %q, stderr:\n%s", cmd, r.code, r.stdout, r.stderr)
		}
	}
	if r := runWith(bare, "dlq", "list", "-nats", withLoudly); r.code != exitOK || r.stderr != "" {
		t.Errorf("a named server: exit %d, stderr %q, want 0 and nothing on stderr", r.code, r.stderr)
	}
}

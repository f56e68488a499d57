package deadletter_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"loudly/internal/testenv"
	"loudly/pkg/deadletter"
)

// newStream returns a JetStream context on a server of its own with the dead-letter
// stream and the ORDERS stream letters are redriven to. The server is always embedded:
// the stream names are fixed, so these tests could not share a server (NATS_URL) with
// other tests, or with anyone's real dead letters, without seeing or deleting theirs.
func newStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	js := testenv.JetStream(t, testenv.EmbeddedNATS(t).URL())
	if _, err := js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{
		Name: workStream, Subjects: []string{"work.>"}, Duplicates: 2 * time.Minute,
	}); err != nil {
		t.Fatal(err)
	}
	if err := deadletter.EnsureStream(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	return js
}

// The stream and subject the letters' originals came from: any work stream will do.
const (
	workStream  = "WORK"
	workSubject = "work.requested"
)

func letter(streamSeq uint64, reason string) deadletter.Letter {
	return deadletter.Letter{
		Subject: workSubject, Stream: workStream, StreamSeq: streamSeq,
		Consumer: "inventory", Outcome: "invalid", Reason: reason, Error: "bad_field: key \"x\" is not a reference",
		Deliveries: 1, Time: time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.UTC),
		Headers: nats.Header{
			jetstream.MsgIDHeader: {"evt-" + reason},
			"traceparent":         {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		},
		Data: []byte(`{"key":"x"}`),
	}
}

func TestPublish_StoresALetterOncePerOriginalPosition(t *testing.T) {
	ctx := context.Background()
	js := newStream(t)
	for range 2 {
		if err := deadletter.Publish(ctx, js, letter(7, "bad_field")); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := deadletter.Count(ctx, js); err != nil || n != 1 {
		t.Fatalf("Count after publishing the same letter twice = %d, %v; want 1", n, err)
	}
	if err := deadletter.Publish(ctx, js, letter(8, "bad_field")); err != nil {
		t.Fatal(err)
	}
	if n, err := deadletter.Count(ctx, js); err != nil || n != 2 {
		t.Fatalf("Count after a letter from another position = %d, %v; want 2", n, err)
	}
}

func TestGet_ReturnsTheLetterAsPublished(t *testing.T) {
	ctx := context.Background()
	js := newStream(t)
	want := letter(7, "bad_field")
	if err := deadletter.Publish(ctx, js, want); err != nil {
		t.Fatal(err)
	}
	got, err := deadletter.Get(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 1 || got.Subject != want.Subject || got.Stream != want.Stream || got.StreamSeq != want.StreamSeq ||
		got.Consumer != want.Consumer || got.Outcome != want.Outcome || got.Reason != want.Reason ||
		got.Error != want.Error || got.Deliveries != want.Deliveries || !got.Time.Equal(want.Time) ||
		string(got.Data) != string(want.Data) {
		t.Errorf("Get = %+v\nwant %+v", got, want)
	}
	// The original headers come back as they were, the original Nats-Msg-Id included,
	// and none of the dead-letter stream's own headers leak into them.
	if len(got.Headers) != len(want.Headers) {
		t.Errorf("headers = %v, want %v", got.Headers, want.Headers)
	}
	for k := range want.Headers {
		if got.Headers.Get(k) != want.Headers.Get(k) {
			t.Errorf("header %s = %q, want %q", k, got.Headers.Get(k), want.Headers.Get(k))
		}
	}

	for _, seq := range []uint64{0, 2, 1000} {
		if _, err := deadletter.Get(ctx, js, seq); !errors.Is(err, deadletter.ErrNotFound) {
			t.Errorf("Get(%d) error = %v, want ErrNotFound", seq, err)
		}
	}
}

func TestPublish_TruncatesALongErrorOnACharacterBoundary(t *testing.T) {
	ctx := context.Background()
	js := newStream(t)
	l := letter(7, "bad_field")
	l.Error = strings.Repeat("€", 400) // 1200 bytes; byte 1024 is inside the 342nd "€"
	if err := deadletter.Publish(ctx, js, l); err != nil {
		t.Fatal(err)
	}
	got, err := deadletter.Get(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Error) > 1024 || !utf8.ValidString(got.Error) || !strings.HasPrefix(l.Error, got.Error) {
		t.Errorf("stored error is %d bytes, valid UTF-8 %v", len(got.Error), utf8.ValidString(got.Error))
	}
}

func TestList_OldestFirstWithLimitAndSkipsRedriven(t *testing.T) {
	ctx := context.Background()
	js := newStream(t)
	if got, err := deadletter.List(ctx, js, 0); err != nil || len(got) != 0 {
		t.Fatalf("List of an empty stream = %v, %v", got, err)
	}
	for i, reason := range []string{"a", "b", "c", "d"} {
		if err := deadletter.Publish(ctx, js, letter(uint64(10+i), reason)); err != nil {
			t.Fatal(err)
		}
	}
	if err := deadletter.Redrive(ctx, js, 2); err != nil {
		t.Fatal(err)
	}
	reasons := func(ls []deadletter.Letter) (out []string) {
		for _, l := range ls {
			out = append(out, l.Reason)
		}
		return out
	}
	for _, tc := range []struct {
		limit int
		want  []string
	}{
		{0, []string{"a", "c", "d"}},
		{2, []string{"a", "c"}},
		{10, []string{"a", "c", "d"}},
	} {
		got, err := deadletter.List(ctx, js, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if g := reasons(got); !slices.Equal(g, tc.want) {
			t.Errorf("List(limit %d) reasons = %v, want %v", tc.limit, g, tc.want)
		}
	}
	if n, err := deadletter.Count(ctx, js); err != nil || n != 3 {
		t.Errorf("Count = %d, %v; want 3", n, err)
	}
}

func TestRedrive(t *testing.T) {
	ctx := context.Background()

	t.Run("publishes the original back and deletes the letter", func(t *testing.T) {
		js := newStream(t)
		l := letter(7, "bad_field")
		// The original is still in the ORDERS duplicate window under its Nats-Msg-Id.
		orig := nats.NewMsg(l.Subject)
		orig.Data, orig.Header = l.Data, l.Headers
		if _, err := js.PublishMsg(ctx, orig); err != nil {
			t.Fatal(err)
		}
		if err := deadletter.Publish(ctx, js, l); err != nil {
			t.Fatal(err)
		}
		if err := deadletter.Redrive(ctx, js, 1); err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, workStream)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetMsg(ctx, 2)
		if err != nil {
			t.Fatalf("the redriven message is not in %s: %v", workStream, err)
		}
		if m.Subject != l.Subject || string(m.Data) != string(l.Data) ||
			m.Header.Get("traceparent") != l.Headers.Get("traceparent") || m.Header.Get(deadletter.HeaderRedriven) != "1" {
			t.Errorf("redriven message = %s %q %v", m.Subject, m.Data, m.Header)
		}
		if _, err := deadletter.Get(ctx, js, 1); !errors.Is(err, deadletter.ErrNotFound) {
			t.Errorf("Get after Redrive error = %v, want ErrNotFound", err)
		}
	})

	t.Run("missing letter", func(t *testing.T) {
		js := newStream(t)
		if err := deadletter.Redrive(ctx, js, 1); !errors.Is(err, deadletter.ErrNotFound) {
			t.Errorf("Redrive of a never-published sequence: %v, want ErrNotFound", err)
		}
		if err := deadletter.Publish(ctx, js, letter(7, "bad_field")); err != nil {
			t.Fatal(err)
		}
		if err := deadletter.Redrive(ctx, js, 1); err != nil {
			t.Fatal(err)
		}
		if err := deadletter.Redrive(ctx, js, 1); !errors.Is(err, deadletter.ErrNotFound) {
			t.Errorf("second Redrive of the same letter: %v, want ErrNotFound", err)
		}
		if n, err := ordersCount(ctx, js); err != nil || n != 1 {
			t.Errorf("%s holds %d messages after redriving once, %v; want 1", workStream, n, err)
		}
	})
}

// ordersCount is how many messages the ORDERS stream holds.
func ordersCount(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(ctx, workStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// A letter continues the original's trace; an original without trace context (a broken
// producer, poison published by hand) gets the trace context of the span that gave it up,
// so its handling joins the trace the decision's exemplar points at.
func TestPublish_CarriesTheDecidingSpansContextWhenTheOriginalHadNone(t *testing.T) {
	js := newStream(t)
	deciding := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), deciding)

	traced := letter(1, "traced")
	untraced := letter(2, "untraced")
	delete(untraced.Headers, "traceparent")
	for _, l := range []deadletter.Letter{traced, untraced} {
		if err := deadletter.Publish(ctx, js, l); err != nil {
			t.Fatal(err)
		}
	}
	ls, err := deadletter.List(context.Background(), js, 0)
	if err != nil || len(ls) != 2 {
		t.Fatalf("List = %d letters, %v", len(ls), err)
	}
	if got, want := ls[0].Headers.Get("traceparent"), traced.Headers.Get("traceparent"); got != want {
		t.Errorf("a letter whose original was traced: traceparent %q, want the original's %q", got, want)
	}
	if got, want := ls[1].Headers.Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"; got != want {
		t.Errorf("a letter whose original was not traced: traceparent %q, want the deciding span's %q", got, want)
	}

	// Without a span in ctx there is nothing to carry, and nothing is made up.
	bare := letter(3, "bare")
	delete(bare.Headers, "traceparent")
	if err := deadletter.Publish(context.Background(), js, bare); err != nil {
		t.Fatal(err)
	}
	if l, err := deadletter.Get(context.Background(), js, 3); err != nil || l.Headers.Get("traceparent") != "" {
		t.Errorf("a letter published without a span: traceparent %q, %v", l.Headers.Get("traceparent"), err)
	}
}

// Package deadletter keeps the messages Loudly could not process, as records someone can
// act on: the original payload and headers, and why, when, by which consumer and after how
// many deliveries it was given up. Letters can be listed, inspected and redriven to the
// subject they came from.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/telemetry"
)

// Stream is the JetStream stream of dead letters; letters are published on
// SubjectPrefix + the name of the consumer that gave up.
const (
	Stream        = "DEADLETTER"
	SubjectPrefix = "deadletter."
)

// Headers added to a dead letter. The original headers are kept beside them.
const (
	HeaderReason     = "Loudly-Dlq-Reason"
	HeaderOutcome    = "Loudly-Dlq-Outcome"
	HeaderError      = "Loudly-Dlq-Error"
	HeaderConsumer   = "Loudly-Dlq-Consumer"
	HeaderStream     = "Loudly-Dlq-Stream"
	HeaderStreamSeq  = "Loudly-Dlq-Stream-Seq"
	HeaderSubject    = "Loudly-Dlq-Subject"
	HeaderDeliveries = "Loudly-Dlq-Deliveries"
	HeaderTime       = "Loudly-Dlq-Time"
	HeaderRedriven   = "Loudly-Redriven-From" // set on a redriven message: the letter's sequence
)

// StreamConfig is the dead-letter stream. Letters are kept for two weeks: long enough to
// come back from a long weekend and redrive them.
var StreamConfig = jetstream.StreamConfig{
	Name:        Stream,
	Description: "Messages Loudly's consumers gave up on, with the reason.",
	Subjects:    []string{SubjectPrefix + ">"},
	Storage:     jetstream.FileStorage,
	Retention:   jetstream.LimitsPolicy,
	MaxAge:      14 * 24 * time.Hour,
	Duplicates:  2 * time.Minute,
}

// EnsureStream creates or updates the dead-letter stream.
func EnsureStream(ctx context.Context, js jetstream.JetStream) error {
	if _, err := js.CreateOrUpdateStream(ctx, StreamConfig); err != nil {
		return fmt.Errorf("stream %s: %w", Stream, err)
	}
	return nil
}

// Letter is one dead letter.
type Letter struct {
	Seq        uint64      `json:"seq"` // sequence in the dead-letter stream
	Subject    string      `json:"subject"`
	Stream     string      `json:"stream"`
	StreamSeq  uint64      `json:"stream_seq"`
	Consumer   string      `json:"consumer"`
	Outcome    string      `json:"outcome"`
	Reason     string      `json:"reason"`
	Error      string      `json:"error,omitempty"`
	Deliveries uint64      `json:"deliveries"`
	Time       time.Time   `json:"time"`
	Headers    nats.Header `json:"headers"` // the original message's headers
	Data       []byte      `json:"data"`
}

// Publish stores l and waits for the broker to confirm it. Its Nats-Msg-Id is derived from
// the original stream position, so a letter published twice (a crash between publishing
// it and terminating the original) is stored once.
//
// A letter carries the original's trace context, so whoever handles it continues the
// original's trace. An original that had none (a producer that does not propagate, poison
// published by hand) gets the trace context of ctx instead: the span that decided to give
// the message up. Then the exemplar of that decision leads to a trace that also shows
// what became of the letter, and a redrive continues it too.
func Publish(ctx context.Context, js jetstream.JetStream, l Letter) error {
	msg := nats.NewMsg(SubjectPrefix + l.Consumer)
	msg.Data = l.Data
	for k, v := range l.Headers {
		// A letter about a letter (a dead-letter consumer giving up) describes its own
		// failure only: the inner letter's Loudly-Dlq-* headers would contradict it.
		if k == jetstream.MsgIDHeader || strings.HasPrefix(k, "Loudly-Dlq-") {
			continue
		}
		msg.Header[k] = v
	}
	if !hasTraceContext(l.Headers) {
		propagation.TraceContext{}.Inject(ctx, telemetry.HeaderCarrier(msg.Header))
	}
	msg.Header.Set(HeaderReason, l.Reason)
	msg.Header.Set(HeaderOutcome, l.Outcome)
	if l.Error != "" {
		msg.Header.Set(HeaderError, truncate(l.Error, 1024))
	}
	msg.Header.Set(HeaderConsumer, l.Consumer)
	msg.Header.Set(HeaderStream, l.Stream)
	msg.Header.Set(HeaderStreamSeq, strconv.FormatUint(l.StreamSeq, 10))
	msg.Header.Set(HeaderSubject, l.Subject)
	msg.Header.Set(HeaderDeliveries, strconv.FormatUint(l.Deliveries, 10))
	msg.Header.Set(HeaderTime, l.Time.UTC().Format(time.RFC3339Nano))
	if id := l.Headers.Get(jetstream.MsgIDHeader); id != "" {
		msg.Header.Set("Loudly-Original-Msg-Id", id)
	}
	_, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("dlq:%s:%d", l.Stream, l.StreamSeq)))
	return err
}

// hasTraceContext reports whether h carries a valid W3C trace context.
func hasTraceContext(h nats.Header) bool {
	ctx := propagation.TraceContext{}.Extract(context.Background(), telemetry.HeaderCarrier(h))
	return trace.SpanContextFromContext(ctx).IsValid()
}

// fromRaw rebuilds a letter from a stored message.
func fromRaw(m *jetstream.RawStreamMsg) Letter {
	h := m.Header
	l := Letter{Seq: m.Sequence, Data: m.Data, Headers: nats.Header{}}
	for k, v := range h {
		if strings.HasPrefix(k, "Loudly-Dlq-") || k == jetstream.MsgIDHeader {
			continue
		}
		l.Headers[k] = v
	}
	if id := h.Get("Loudly-Original-Msg-Id"); id != "" {
		l.Headers.Set(jetstream.MsgIDHeader, id)
		delete(l.Headers, "Loudly-Original-Msg-Id")
	}
	l.Subject = h.Get(HeaderSubject)
	l.Stream = h.Get(HeaderStream)
	l.StreamSeq, _ = strconv.ParseUint(h.Get(HeaderStreamSeq), 10, 64)
	l.Consumer = h.Get(HeaderConsumer)
	l.Outcome = h.Get(HeaderOutcome)
	l.Reason = h.Get(HeaderReason)
	l.Error = h.Get(HeaderError)
	l.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDeliveries), 10, 64)
	l.Time, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderTime))
	return l
}

// ErrNotFound is returned for a sequence that holds no letter (never did, or was redriven).
var ErrNotFound = errors.New("no dead letter with that sequence")

// Get returns the letter at seq.
func Get(ctx context.Context, js jetstream.JetStream, seq uint64) (Letter, error) {
	if seq == 0 {
		return Letter{}, ErrNotFound // sequences start at 1; the server calls 0 a bad request
	}
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return Letter{}, err
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Letter{}, ErrNotFound
	}
	if err != nil {
		return Letter{}, err
	}
	return fromRaw(m), nil
}

// List returns up to limit letters (0: all), oldest first.
func List(ctx context.Context, js jetstream.JetStream, limit int) ([]Letter, error) {
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []Letter
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		if limit > 0 && len(out) >= limit {
			break
		}
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted by a redrive
		}
		if err != nil {
			return out, err
		}
		out = append(out, fromRaw(m))
	}
	return out, nil
}

// Count returns how many letters the stream holds.
func Count(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// Redrive publishes the letter at seq back to its original subject with its original
// payload and headers, waits for the broker's confirmation, and only then deletes the
// letter. A crash in between leaves the letter in place: redriving twice delivers twice,
// which the consumers' idempotency absorbs; losing a letter is not possible.
func Redrive(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	l, err := Get(ctx, js, seq)
	if err != nil {
		return err
	}
	if l.Subject == "" {
		return fmt.Errorf("dead letter %d has no original subject", seq)
	}
	msg := nats.NewMsg(l.Subject)
	msg.Data = l.Data
	for k, v := range l.Headers {
		if k == jetstream.MsgIDHeader {
			continue // the original id is still in the broker's duplicate window for a recent letter
		}
		msg.Header[k] = v
	}
	msg.Header.Set(HeaderRedriven, strconv.FormatUint(seq, 10))
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("redrive:%d:%d", seq, time.Now().UnixNano()))); err != nil {
		return fmt.Errorf("redrive %d: publish: %w", seq, err)
	}
	s, err := js.Stream(ctx, Stream)
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("redrive %d: published, but deleting the letter failed (it may be redriven again): %w", seq, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) { // never cut a character in two
		n--
	}
	return s[:n]
}

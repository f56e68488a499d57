// Package consumer is the one consumer runner of Loudly: it pulls from a durable
// JetStream consumer, continues the trace carried in the message headers, decodes the
// event's envelope, calls the handler, and then — in one place, the same way every time —
// settles the result the handler returned (ack, nak with delay, or term plus dead letter)
// and records it (span event, counter with exemplar, log line).
//
// It knows no business: the envelope's key is an opaque entity key, handlers are typed by
// the event types a service declares (Handle, On, Routes), and behaviour around a handler
// (fault injection, for one) is Middleware.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/deadletter"
	"loudly/pkg/envelope"
	"loudly/pkg/telemetry"
)

// Config describes one durable consumer. Zero values take the Default* values (env.go);
// the JetStream defaults (unlimited deliveries, 1000 in flight) are overridden on purpose.
type Config struct {
	Stream        string // required
	Name          string // durable consumer name; required
	FilterSubject string // required

	AckWait       time.Duration // default 30s; a handler running longer sends InProgress
	MaxDeliver    int           // deliveries before a retried message is dead-lettered; default 10
	BackoffBase   time.Duration // first nak delay; default 500ms, doubling each delivery
	BackoffMax    time.Duration // cap of the nak delay; default 30s
	MaxAckPending int           // default 256
	Concurrency   int           // handler goroutines (batches in flight, for a batch handler); default 8

	// BatchSize and BatchWait shape the batches a BatchHandler decides: up to BatchSize
	// messages that arrived together, gathered for at most BatchWait after the first one.
	// One batch fills at a time, and Concurrency of them are decided at once. A plain
	// Handler always decides one message at a time. Defaults 64 and 5ms.
	BatchSize int
	BatchWait time.Duration

	// RawPayload skips envelope decoding: for consumers whose messages are not events
	// (the dead-letter watcher). The handler sees Message.Event empty.
	RawPayload bool

	// KeyName is what the service calls its events' key in decision logs and spans (the
	// demo names it after its orders); default telemetry.DefaultKeyName.
	KeyName string
}

func (c Config) withDefaults() (Config, error) {
	if c.Stream == "" || c.Name == "" || c.FilterSubject == "" {
		return c, errors.New("consumer: Stream, Name and FilterSubject are required")
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchWait <= 0 {
		c.BatchWait = DefaultBatchWait
	}
	return c, nil
}

// Message is what a handler sees. It has no ack methods on purpose.
type Message struct {
	Subject   string
	Data      []byte
	Header    nats.Header
	Event     envelope.Envelope // the checked envelope, unless Config.RawPayload
	Attempt   int               // 1 for the first delivery
	StreamSeq uint64

	ctx context.Context
}

// Context is the message's own context: its trace (the span of its processing, a child of
// its producer's) and its deadline. A batch handler uses it for what it records about one
// message of the batch.
func (m *Message) Context() context.Context {
	if m.ctx == nil {
		return context.Background()
	}
	return m.ctx
}

// Batch defaults, chosen from `make bench` on a 2-core machine (README, Performance):
// batches of 64 let one transaction lock each hot row once for many messages, and a 5ms
// linger costs little latency at low rates.
const (
	DefaultBatchSize = 64
	DefaultBatchWait = 5 * time.Millisecond
)

// Runner runs one handler on one durable consumer.
type Runner struct {
	cfg     Config
	js      jetstream.JetStream
	cons    jetstream.Consumer
	handler Handler      // nil for a batch runner
	batch   BatchHandler // nil for a one-message-at-a-time runner
	tel     *telemetry.Telemetry
	tracer  trace.Tracer

	duration  metric.Float64Histogram
	byOutcome map[telemetry.Outcome]metric.RecordOption // duration's consumer and outcome, built once
	batchSize metric.Int64Histogram
	attrs     metric.MeasurementOption // consumer and stream
	ready     atomic.Bool
}

// New creates (or updates) the durable consumer and returns its runner, which decides one
// message at a time. The stream must exist.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, h Handler, tel *telemetry.Telemetry) (*Runner, error) {
	if h == nil {
		return nil, errors.New("consumer: a handler is required")
	}
	return newRunner(ctx, js, cfg, h, nil, tel)
}

// NewBatch is New for a handler that decides messages in batches (Config.BatchSize,
// BatchWait). Every message still ends in its own result, settlement, span and record.
func NewBatch(ctx context.Context, js jetstream.JetStream, cfg Config, h BatchHandler, tel *telemetry.Telemetry) (*Runner, error) {
	if h == nil {
		return nil, errors.New("consumer: a batch handler is required")
	}
	return newRunner(ctx, js, cfg, nil, h, tel)
}

func newRunner(ctx context.Context, js jetstream.JetStream, cfg Config, h Handler, bh BatchHandler, tel *telemetry.Telemetry) (*Runner, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if tel == nil {
		return nil, errors.New("consumer: telemetry is required")
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Name,
		Description:   "Loudly consumer runner",
		FilterSubject: cfg.FilterSubject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		// One delivery more than the runner allows, so that a message whose last attempt
		// timed out (the process died mid-handler) is still delivered once more and
		// dead-lettered by the runner, instead of the server silently giving up on it.
		MaxDeliver:    cfg.MaxDeliver + 1,
		MaxAckPending: cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", cfg.Name, cfg.Stream, err)
	}
	r := &Runner{cfg: cfg, js: js, cons: cons, handler: h, batch: bh, tel: tel, tracer: tel.Tracer()}
	if err := r.instruments(); err != nil {
		return nil, err
	}
	r.ready.Store(true)
	return r, nil
}

// Name is the durable consumer's name.
func (r *Runner) Name() string { return r.cfg.Name }

// Ready reports whether the consumer exists and the runner has not stopped.
func (r *Runner) Ready() bool { return r.ready.Load() }

func (r *Runner) instruments() error {
	m := r.tel.Meter()
	var err error
	r.duration, err = m.Float64Histogram("loudly.consumer.process.duration", metric.WithUnit("s"),
		metric.WithDescription("Time from receiving a message to settling it, by consumer and outcome."),
		metric.WithExplicitBucketBoundaries(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	if err != nil {
		return err
	}
	// The closed set of outcomes makes every attribute set of the duration known up
	// front: built once here, not sorted and allocated again for every message.
	r.byOutcome = make(map[telemetry.Outcome]metric.RecordOption, len(telemetry.Outcomes))
	for _, o := range telemetry.Outcomes {
		r.byOutcome[o] = r.outcomeAttrs(o)
	}
	r.batchSize, err = m.Int64Histogram("loudly.consumer.batch.size", metric.WithUnit("{message}"),
		metric.WithDescription("Messages in each batch a batch consumer decided: near CONSUMER_BATCH_SIZE while it is behind, small while it keeps up."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000))
	if err != nil {
		return err
	}
	// Broker-side view of the consumer, read on each collection.
	pending, err1 := m.Int64ObservableGauge("loudly.consumer.pending", metric.WithUnit("{message}"),
		metric.WithDescription("Messages in the stream not yet delivered to the consumer."))
	ackPending, err2 := m.Int64ObservableGauge("loudly.consumer.ack_pending", metric.WithUnit("{message}"),
		metric.WithDescription("Messages delivered and not yet acknowledged."))
	redelivered, err3 := m.Int64ObservableGauge("loudly.consumer.redelivered", metric.WithUnit("{message}"),
		metric.WithDescription("Messages delivered more than once and not yet acknowledged."))
	acked, err4 := m.Int64ObservableCounter("loudly.consumer.acknowledged", metric.WithUnit("{message}"),
		metric.WithDescription("The consumer's ack floor (consumer sequence): its rate is the rate of acknowledgements."))
	delivered, err5 := m.Int64ObservableCounter("loudly.consumer.delivered", metric.WithUnit("{message}"),
		metric.WithDescription("Deliveries made by the consumer (consumer sequence), redeliveries included."))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return err
	}
	r.attrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("consumer", r.cfg.Name), attribute.String("stream", r.cfg.Stream)))
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		info, err := r.cons.Info(ctx)
		if err != nil {
			return nil // broker unreachable: a gap in the series, and /readyz says why
		}
		o.ObserveInt64(pending, int64(info.NumPending), r.attrs)
		o.ObserveInt64(ackPending, int64(info.NumAckPending), r.attrs)
		o.ObserveInt64(redelivered, int64(info.NumRedelivered), r.attrs)
		o.ObserveInt64(acked, int64(info.AckFloor.Consumer), r.attrs)
		o.ObserveInt64(delivered, int64(info.Delivered.Consumer), r.attrs)
		return nil
	}, pending, ackPending, redelivered, acked, delivered)
	return err
}

// Run consumes until ctx is cancelled. On cancellation it stops pulling, lets the
// handlers in flight finish and settle, and releases every message that was fetched but
// not started (a nak redelivered after releaseDelay), so another replica takes it without
// waiting for AckWait.
func (r *Runner) Run(ctx context.Context) error {
	defer r.ready.Store(false)
	// A short pull expiry (and so heartbeat) bounds how long a pull request lost in a
	// broker restart can leave the runner idle: the client notices the missing
	// heartbeats and pulls again.
	iter, err := r.cons.Messages(jetstream.PullMaxMessages(r.prefetch()), jetstream.PullExpiry(10*time.Second))
	if err != nil {
		return fmt.Errorf("consumer %s: %w", r.cfg.Name, err)
	}
	stop := context.AfterFunc(ctx, iter.Drain)
	defer stop()

	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	// One batch fills at a time (fill): the handler goroutine that holds filling takes
	// every message until its batch is full or BatchWait has passed, and only then does the
	// next idle one start a batch. Idle goroutines taking turns at the channel instead
	// would split a burst (a producer's batch of results, published together) into as many
	// batches as there are idle goroutines, each one more transaction.
	var filling sync.Mutex
	for range r.cfg.Concurrency {
		wg.Go(func() {
			if r.batch != nil {
				for {
					batch, ok := r.fill(ctx, &filling, work)
					if !ok {
						return
					}
					if batch != nil {
						r.handleBatch(batch)
					}
				}
			}
			for m := range work {
				if ctx.Err() != nil {
					r.release(m) // handed over as the shutdown began: not started, so released
					continue
				}
				r.handle(m)
			}
		})
	}
	var runErr error
	for {
		m, err := iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				if ctx.Err() == nil {
					runErr = fmt.Errorf("consumer %s: iterator closed: %w", r.cfg.Name, err)
				}
				break
			}
			if ctx.Err() == nil {
				r.tel.Logger.Warn("consumer pull failed", "consumer", r.cfg.Name, "error", err)
			}
			continue
		}
		if ctx.Err() != nil {
			r.release(m)
			continue
		}
		// While every handler is busy the message waits here; a shutdown must release it
		// at once rather than start it once a handler frees up.
		select {
		case work <- m:
		case <-ctx.Done():
			r.release(m)
		}
	}
	close(work)
	wg.Wait()
	return runErr
}

// releaseDelay holds back the redelivery of a message released at shutdown. A plain Nak
// is redelivered at once, possibly to this runner's own pull request while the iterator
// is still draining, which releases it again: a loop that uses up MaxDeliver in
// milliseconds, after which the server drops the message with no dead letter. The delay
// lets the drain finish first and is still far below any sensible AckWait.
const releaseDelay = time.Second

// release gives back a message the runner fetched but will not start.
func (r *Runner) release(m jetstream.Msg) { _ = m.NakWithDelay(releaseDelay) }

// delivery is one message from its receipt to its settlement: its own context (bounded
// by AckWait, carrying its own span) and the broker message to settle.
type delivery struct {
	jm     jetstream.Msg
	msg    *Message
	ctx    context.Context
	cancel context.CancelFunc
	span   trace.Span
	start  time.Time
}

// receive starts a delivery: the message as a handler sees it, the trace continued from
// its headers, and its span. The handler's context is not the run context: a shutdown
// lets it finish. It is bounded by AckWait, after which the broker would redeliver anyway.
func (r *Runner) receive(jm jetstream.Msg, opts ...trace.SpanStartOption) *delivery {
	d := &delivery{jm: jm, start: time.Now()}
	meta, _ := jm.Metadata()
	msg := &Message{Subject: jm.Subject(), Data: jm.Data(), Header: jm.Headers()}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	if meta != nil {
		msg.Attempt = int(meta.NumDelivered)
		msg.StreamSeq = meta.Sequence.Stream
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.AckWait)
	ctx = r.tel.Extract(ctx, msg.Header)
	opts = append(opts, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.operation.name", "process"),
			attribute.String("messaging.destination.name", msg.Subject),
			attribute.String("messaging.consumer.group.name", r.cfg.Name),
			attribute.String("messaging.message.id", msg.Header.Get(jetstream.MsgIDHeader)),
			attribute.Int("messaging.nats.message.delivery_count", msg.Attempt),
			attribute.Int64("messaging.nats.stream.sequence", int64(msg.StreamSeq)),
		))
	ctx, d.span = r.tracer.Start(ctx, "process "+msg.Subject, opts...)
	msg.ctx = ctx
	d.msg, d.ctx, d.cancel = msg, ctx, cancel
	return d
}

// handle runs one message from receipt to settlement.
func (r *Runner) handle(jm jetstream.Msg) {
	d := r.receive(jm)
	out, decided := r.predecide(d.msg)
	if !decided {
		out = r.call(d.ctx, jm, d.msg)
	}
	r.finish(d, out)
}

// finish settles a delivery's result and records it: the one place every message of
// every consumer ends.
func (r *Runner) finish(d *delivery, out Result) {
	defer d.cancel()
	defer d.span.End()
	msg, ctx := d.msg, d.ctx
	out = r.final(msg, out)
	settlement, settleErr := r.settle(ctx, d.jm, msg, &out)

	dec := telemetry.Decision{
		Stage: telemetry.StageConsume, Outcome: out.outcome, Reason: out.reason,
		EventType: msg.Event.Type, EventID: msg.Event.ID, Key: msg.Event.Key, KeyName: r.cfg.KeyName,
		// A settlement the broker did not take (a lost connection, a context that ran
		// out) means the message comes back; the recorder says so instead of "ack".
		Settlement: settlement, SettleErr: settleErr, Err: out.err,
		Attrs: []slog.Attr{slog.String("consumer", r.cfg.Name), slog.Int("delivery", msg.Attempt), slog.Uint64("stream_seq", msg.StreamSeq)},
	}
	if dec.EventType == "" {
		dec.EventType = msg.Subject
	}
	if out.key != "" {
		dec.Key = out.key
	}
	r.tel.Decisions.Record(ctx, dec)
	attrs, ok := r.byOutcome[out.outcome]
	if !ok {
		attrs = r.outcomeAttrs(out.outcome)
	}
	r.duration.Record(ctx, time.Since(d.start).Seconds(), attrs)
}

// outcomeAttrs is the duration histogram's attribute set for outcome o.
func (r *Runner) outcomeAttrs(o telemetry.Outcome) metric.RecordOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("consumer", r.cfg.Name), attribute.String("outcome", string(o))))
}

// predecide decides the messages no handler should see: one delivered more often than
// allowed (its earlier attempts timed out), and one whose envelope can never be read.
func (r *Runner) predecide(msg *Message) (Result, bool) {
	if msg.Attempt > r.cfg.MaxDeliver {
		return Result{outcome: telemetry.DeadLettered, reason: "max_deliveries_exceeded",
			err: fmt.Errorf("delivered %d times, limit %d (earlier attempts timed out)", msg.Attempt, r.cfg.MaxDeliver)}, true
	}
	if !r.cfg.RawPayload {
		env, err := envelope.Decode(msg.Data)
		msg.Event = env
		if err != nil {
			return invalidFrom(err), true
		}
	}
	return Result{}, false
}

// final checks what a handler returned: no outcome is a missing branch, dead-lettered;
// a retry with no delivery left is dead-lettered with the retry's reason.
func (r *Runner) final(msg *Message, out Result) Result {
	if !out.outcome.Valid() {
		return Invalid("no_outcome", errors.New("handler returned no outcome: a branch is missing its decision"))
	}
	if out.outcome == telemetry.Retry && msg.Attempt >= r.cfg.MaxDeliver {
		return Result{outcome: telemetry.DeadLettered, reason: out.reason, key: out.key,
			err: fmt.Errorf("retries exhausted after %d deliveries: %w", msg.Attempt, out.err)}
	}
	return out
}

// call runs the handler, turning a panic into a retry (the watermill recoverer's rule: a
// panic is a failure to retry, never a lost message) and telling the broker the message
// is still in progress while a slow handler runs. The heartbeats stop when the handler's
// context ends (AckWait after it started): a handler still running then is stuck, and the
// broker redelivers its message once AckWait passes, instead of a heartbeat keeping a
// stuck message from everyone for ever.
func (r *Runner) call(ctx context.Context, jm jetstream.Msg, msg *Message) (out Result) {
	stop := r.heartbeat(ctx, func() {
		if ctx.Err() == nil {
			_ = jm.InProgress()
		}
	})
	defer stop()
	defer func() {
		if p := recover(); p != nil {
			out = Retry("panic", fmt.Errorf("handler panicked: %v\n%s", p, debug.Stack()))
		}
	}()
	return r.handler(ctx, msg)
}

// heartbeat calls beat every AckWait/3 until stop is called or ctx ends.
func (r *Runner) heartbeat(ctx context.Context, beat func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(r.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				beat()
			}
		}
	}()
	return func() { close(done) }
}

// settle tells the broker the result. A dead letter that cannot be stored turns the
// result into a retry: a message is only ever terminated once its letter is safe.
func (r *Runner) settle(ctx context.Context, jm jetstream.Msg, msg *Message, out *Result) (telemetry.Settlement, error) {
	switch out.outcome {
	case telemetry.Applied, telemetry.Rejected, telemetry.Duplicate:
		return telemetry.Ack, jm.DoubleAck(ctx)
	case telemetry.Retry:
		return telemetry.Nak, jm.NakWithDelay(r.backoff(msg.Attempt))
	default: // Invalid, DeadLettered
		errText := ""
		if out.err != nil {
			errText = out.err.Error()
		}
		stream := r.cfg.Stream
		if meta, _ := jm.Metadata(); meta != nil {
			stream = meta.Stream
		}
		err := deadletter.Publish(ctx, r.js, deadletter.Letter{
			Subject: msg.Subject, Stream: stream, StreamSeq: msg.StreamSeq, Consumer: r.cfg.Name,
			Outcome: string(out.outcome), Reason: out.reason, Error: errText,
			Deliveries: uint64(msg.Attempt), Time: time.Now(), Headers: msg.Header, Data: msg.Data,
		})
		if err != nil {
			*out = Retry("deadletter_unavailable", fmt.Errorf("storing the dead letter (%s: %s) failed: %w", out.outcome, out.reason, err))
			return telemetry.Nak, jm.NakWithDelay(r.backoff(msg.Attempt))
		}
		if termReasonSupported(r.js.Conn().ConnectedServerVersion()) {
			return telemetry.Term, jm.TermWithReason(out.reason)
		}
		return telemetry.Term, jm.Term()
	}
}

// termReasonSupported reports whether a server understands "+TERM <reason>" (2.10.4 and
// later). An older server ignores the whole acknowledgement, and the message comes back
// after AckWait, again and again, holding an ack-pending slot each time: with enough
// poison, every slot, and the consumer stalls. The reason is in the dead letter anyway.
func termReasonSupported(version string) bool {
	var major, minor, patch int
	if _, err := fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &patch); err != nil {
		return false
	}
	switch {
	case major != 2:
		return major > 2
	case minor != 10:
		return minor > 10
	default:
		return patch >= 4
	}
}

// backoff is the nak delay before delivery attempt+1: exponential, capped, ±20% jitter.
func (r *Runner) backoff(attempt int) time.Duration {
	d := r.cfg.BackoffBase << min(max(attempt-1, 0), 20)
	if d > r.cfg.BackoffMax || d <= 0 {
		d = r.cfg.BackoffMax
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Stream is the stream the consumer reads.
func (r *Runner) Stream() string { return r.cfg.Stream }

// ReadyCheck is a readiness check that passes while every runner is running and its
// durable consumer exists on the broker.
func ReadyCheck(js jetstream.JetStream, runners ...*Runner) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, r := range runners {
			if !r.Ready() {
				return fmt.Errorf("consumer %s is not running", r.Name())
			}
			if _, err := js.Consumer(ctx, r.Stream(), r.Name()); err != nil {
				return fmt.Errorf("consumer %s: %w", r.Name(), err)
			}
		}
		return nil
	}
}

// Package silentcheck defines an analyzer that reports message-handling code where a
// branch drops work without a trace.
//
// It exists because of the outage Loudly was built to prevent: a consumer did
//
//	if !isValid(event) {
//		return nil
//	}
//
// and the broker took the nil as success and deleted the message. No log, no metric, no
// retry, no dead letter. The compiler cannot see that mistake; this analyzer can, in the
// handful of shapes it takes.
//
// # Message-handling code
//
// Messages are recognised by their shape, across libraries: a type with an Ack of its
// own (no argument but options, or one flag) and one of Nak, Nack, Term or Reject (NATS
// core *nats.Msg, JetStream jetstream.Msg, Watermill's *message.Message, AMQP
// deliveries, Google Pub/Sub messages); a type with Ack() error and its payload as
// Data() []byte or a Data []byte field (NATS Streaming's Msg, a team's wrapper); a Kafka
// record, a struct with Topic, Partition, Offset and Value []byte (sarama's
// ConsumerMessage, franz-go's Record, segmentio's Message); or Loudly's
// consumer.Message. A slice of messages is a batch. An Ack that takes what to
// acknowledge (an AMQP channel's Ack(tag, multiple)) belongs to a connection, not a
// message.
//
// A function or function literal is message-handling code when
//
//   - it is handed to a place typed as a message handler: an argument of a subscribe or
//     consume call (Subscribe, Consume, Watermill's AddHandler and
//     AddNoPublisherHandler, a team's own wrapper taking func(ctx, []*nats.Msg) bool), a
//     value returned, assigned or stored as one. A callback type that also receives an
//     error (a publish-failure handler) is not a handler;
//   - it receives a message or a batch and returns what a handler returns: an error,
//     a bool, Watermill's ([]*Message, error) or one other value (an outcome). Taking
//     messages to publish (variadic) or marshalling one ((X, error)) is not handling;
//   - it receives a Kafka record and returns, among several results, the offset to
//     commit (an integer computed from msg.Offset: Trigger(msg) ([]*ProducerMessage,
//     int64, func())); or it receives a claim whose Messages() is a channel of records
//     (a consumer group's ConsumeClaim, whatever it marks them with);
//   - its own body settles a message: Ack, AckSync, DoubleAck, Term, TermWithReason, Nak,
//     NakWithDelay, Nack, Reject or InProgress, or marks or commits a record (a Mark* or
//     Commit* method given records: a session's MarkMessage, a client's CommitRecords),
//     or hands a message to a helper of the checked module that queues its settlement
//     (saver.SaveNack(&msg, state, false), see rule 2);
//   - it returns nothing, receives a message, and is called with one by message-handling
//     code or inside a loop over messages (s.perform(m, req) at the end of a subscribed
//     callback, go r.route(d) for each delivery): the message's handling goes on there.
//
// A loop over messages ranges over a batch, over a channel of messages or over a function
// yielding them (a team's queue handing out its deliveries as iter.Seq[Message]), or
// takes one in its body (from a channel, a fetch, a subscription's NextMsg). A message
// the loop builds to send is not one it takes: a literal, or a method of the loop's own
// item (for _, rec := range stored { msg, err := rec.Msg(prefix) }), unless that item is
// a subscription.
//
// Not handlers: a function that takes one message and returns a bool (a question about
// it, shouldAck(m)), also when it is stored in a variable or a field for later (f.match
// = func(r *kgo.Record) bool { ... }; handed to a subscribe call, it is a handler); a
// message type's own methods (a wrapper's Term() error { return
// m.msg.Term() }); a function whose only use of the message is to fill it in to be sent
// (msg.Header.Set, msg.Data = ...).
//
// A callback without results that is never subscribed and settles nothing (a helper that
// looks at a message) is not judged, nor is the code of the broker clients themselves
// (nats.go, Watermill, amqp, Pub/Sub) outside their tests and examples: status
// plumbing, replies to publishes and the body of Ack are nobody's consumer.
//
// A function literal is judged on its own parameters and body: a closure inside a handler
// is not a handler because of where it is written, and a handler's checks do not look into
// the closures it contains, but one: a goroutine the handler starts on the spot to go on
// with the message (go func() { ... m ... }(), taking and returning nothing, its body
// mentioning the message or what was derived from it) is the handler's continuation, and
// its branches are judged as the handler's (a core NATS message is gone once the callback
// returns, so a silent return in there drops it).
//
// # Branches
//
// A branch taken only when the message itself is nil (if msg == nil: a receive from a
// closed channel of records, nothing handed in) decides nothing: there is no message to
// drop. Nor does the error check of the call that was to take it, right where it was
// taken (m, err := r.ReadMessage(ctx); if err != nil { continue }): the fetch failed.
// A check of what the message holds (len(msg.Value) == 0) is a decision.
//
// A branch is the body of an if, the else block of an if, or a case (or default) clause of
// a switch, type switch or select; a select case that receives a message (case m :=
// <-msgs) is where that message's handling starts, not a branch. The findings below are always about the innermost
// branch that holds the return or call; a return or an Ack outside every branch is the
// function's main path and is never reported (a termination is, see rule 2).
//
// An error branch is the body of an if whose condition tests an error against nil
// (err != nil, possibly combined with && or ||), the else block of if err == nil, or a
// case err != nil clause of a switch without a tag.
//
// A success branch is the main path by another name: the body of if err == nil (possibly
// within &&) or the else block of if err != nil (possibly within ||). A return nil or an
// Ack there is not reported. An HTTP response's 2xx status is the same after a request
// (if resp.StatusCode < 300, == http.StatusOK, the else of >= 300): a helper that posts
// the payload and returns nil there has done its work.
//
// A success branch is also the branch that follows the work's own success: the body of
// if process(m) (or if ok) and the else of if !process(m), when the if decides how the
// message ends (it has an else, or it is the last statement of its block). An Ack there
// is not reported; if duplicate(m) { m.Ack(); continue } before the work still is. So is
// a select case that sends (case out <- rec: sess.MarkMessage(rec, "")): the message has
// been handed on, and what the case does next follows that hand-off.
//
// # Rules
//
// In message-handling code silentcheck reports:
//
//  1. A branch that reports success and records nothing. Success depends on the shape:
//     return nil (every result nil, the last one an error), return true when the only
//     result is a bool (a batch handler: true acknowledges; false asks for redelivery
//     and is never reported), a bare return in a function whose only result is a named
//     error that the branch neither tests nor sets, and a bare return from a callback
//     without results. A branch that settles the message before returning, or that
//     returns because a settlement failed (if err := m.Ack(); err != nil { return }),
//     is left to rule 2. In a callback without results, and in a loop that fetches or
//     claims messages, a branch whose condition mentions nothing derived from the
//     message (a timer reset, a counter at its limit, the program's configuration, a
//     closed channel) decides nothing about it and is not reported, unless it leaves
//     before the message's work: the if (or switch, or select) stands in the callback's
//     body and the statements after it put the message to use (hand it to a call, send
//     it, store it: if s.isClosed() { return } followed by out <- m). A decision about
//     the subscriber (closed, not the leader) drops the message all the same. A return
//     in a callback or loop without results when the context ends (errors.Is(err,
//     context.Canceled), ctx.Err() != nil) leaves the message unsettled for the broker to
//     hand out again and is not reported; a handler's return nil there still is. A
//     consumer group's ConsumeClaim settles nothing by returning: the claim ends, the
//     records it has not marked are not committed, and the partition's next owner reads
//     them again (if !flush(sess.Context(), batch) { return nil }); its skips are rule
//     4's.
//  2. A settlement that drops the message: Ack, AckSync or DoubleAck in an error branch
//     or in any other branch that records nothing (a branch that logs, counts or
//     returns the error leaves a trace and is not silent: the message is gone, but the
//     decision is on record); and Term,
//     TermWithReason or Reject that records nothing, wherever it is: in a branch, in the
//     body of a loop over fetched messages, or on a function's main path.
//     A positive ack in a branch that only chooses how to acknowledge (every branch of the
//     if acknowledges: if double { m.DoubleAck() } else { m.Ack() }), or in a branch that
//     decides nothing about the message (if cfg.ack { m.Ack() }), or in a branch guarded
//     only by the message's own nil check (if msg != nil { msg.Ack() }, the message
//     found again once its delivery was tracked), is the success path. So is a positive
//     ack in the body of an if that falls through to the message's work (if
//     job.AutoAck { d.Ack(false) } and the job pushed below): the message is
//     acknowledged before it is processed, not instead.
//     A Nack or Reject told not to requeue is a termination too: its requeue flag (the
//     last parameter, when it is a bool: AMQP's Nack(multiple, requeue) and
//     Reject(requeue), a team wrapper's Nack(requeue)) is the constant false, or, for
//     Reject, not known to be true. Told to requeue (Nack(true), Reject(true)), the
//     message comes back: a retry, like Nak, never reported.
//     An ack function, a function that receives no message but an error (the outcome of
//     the message's processing: func(ctx, res error) error, returned beside a delivery
//     it captured), settles the way that error says: a settlement in a branch deciding
//     on the error (if rejects(res) { return d.Nack(false, false) }) carries out a
//     decision made, and returned as that error, where the message was processed. A
//     settlement it decides on anything else is judged.
//     A settlement can be made through a helper of the checked module that queues it:
//     a function handed the message that appends, on its main path, a closure that only
//     settles it (func() { m.Nack(requeue) }) or a method value (m.Ack) to a list run
//     later, every settlement of the message in its body being the same. A call to it
//     (saver.SaveNack(&msg, state, false)) is that settlement, with the requeue flag
//     taken from the caller's argument when the helper passes its parameter on; the
//     closure it queues is judged at those calls, not on its own. This is found one
//     level down, across the module's packages (an analysis fact); a helper that
//     settles the message itself is not taken for a settlement (it is a handler, or
//     the handler's own work).
//  3. An empty error branch, if err != nil {} (or an empty case err != nil: clause). A
//     branch that only builds an error and throws it away (_ = fmt.Errorf("decode: %w",
//     err), _ = errors.New(...)) is as empty. Judged in message handlers, and in a loop
//     over messages in any function when the error comes from the message (a goroutine
//     ranging over auto-acknowledged deliveries that charges what did not decode).
//  4. A continue that skips a Kafka record in a branch that decides about it and records
//     nothing, in any function (a ConsumeClaim, or main's loop reading from a consumer
//     group's reader, which commits what it hands out): offsets are positional, so
//     committing the next record commits this one.
//     Likewise a continue that skips a message in a loop over messages whose body settles
//     none of them (core NATS from NextMsg, auto-acknowledged AMQP deliveries), in any
//     function: in a branch that decides about the message, or before its work as in
//     rule 1 (select { case <-sock.closing: continue; default: } and then the message
//     queued). Nothing redelivers it. (A skipped message in a loop that settles the others
//     is not acknowledged and comes back, unless the loop acknowledged it first, on its
//     main path: for _, m := range msgs { m.Ack(); ... continue ... }.) In a Kafka record loop, a skip that decides
//     about the consumer rather than the record (no worker left:
//     if errors.Is(err, errAllTerminated) { continue }, also inside an enclosing if) is
//     reported when the record's work follows it.
//     A return out of a loop over messages (Kafka records, or a loop that takes its own
//     messages: a range over deliveries, a NextMsg loop), in a branch that decides about
//     the message and records nothing, in a function that is not a handler or in a
//     goroutine that ranges over deliveries and settles them itself: the loop stops, so
//     that message and every later one go unhandled (for d := range deliveries { if err
//     := json.Unmarshal(d.Body, &r); err != nil { return } ... }). A return that hands
//     something back, one taken when the message is absent or the context ends, and one
//     taken when a callback handed the message asks to stop (if !yield(m) { return }),
//     and one after the message was put to use (sent on, then if m.Offset == end {
//     return }) are not.
//  5. The implicit else: an if without an else that holds all the work done on the
//     message, deciding about it, when nothing but its settlement (an ack, a mark, a
//     commit, return nil) follows and nothing was done with the message before it
//     (reading, decoding or asking about it is not doing): when the condition is false
//     the message is settled having done nothing (if t, ok := triggers[key]; ok {
//     t.Fire(rec) } then sess.MarkMessage(rec, "")). For a record handler that returns
//     the offset to commit, the offset's bookkeeping and a return of nil, the offset and
//     what only the if's body filled in count as that settlement. A settlement whose
//     error is kept and checked (err = saver.SaveAck(&msg); if err != nil { log }) is a
//     settlement too: the check is about the settlement failing. An if at the end of
//     work already
//     done (if req.CallbackURL != nil { post the result }) is an extra, and an if that
//     only collects an error (errs = append(errs, fmt.Errorf(...))) is a check. An if on
//     a helper's answer (if h.Handle(ctx, m) { commit(m) }, or ok := h.Handle(ctx, m); if
//     ok) whose helper explains every "no" it gives (see "What counts as recording") has
//     its implicit else explained.
//     An if on the error's absence (if err := json.Unmarshal(m.Data, &ev); err == nil {
//     record(ev) }) is judged only where the message ends with the function: the last
//     statement of a callback without results that settles nothing (a core NATS
//     subscriber); when the error is not nil, the message is gone unrecorded. (Where a
//     settlement follows, or the message is left unacknowledged to come back, it is not;
//     except in the body of a loop over Kafka records, where the record is committed with
//     the next one whatever follows.)
//     The implicit default is the same for a switch on a value derived from the message
//     without a default, whose cases hold all the work (a case may hand a failure back,
//     return err): a value no case names is settled having done nothing (switch
//     version(rec.Key) { case 0, 1: applyV1(rec); case 2: applyV2(rec) } then return
//     nil), and for a type switch on one (switch e := decode(rec.Value).(type) { case
//     Created: ...; case Deleted: ... }): a type no case names is dropped. Both are
//     judged in a loop over Kafka records in any function too (main's read loop ending
//     in switch ev.Type { ... }): the next read commits the record no case took.
//  6. A call that hands the message, or only its payload, to a helper that drops it: a
//     function given a message or a []byte that returns (bare, or nil as its only error)
//     from a branch deciding about what it was given and records nothing
//     (handle(msg.Subject(), msg.Data()) whose first lines are if !match(data) { return }),
//     or that hands it on, on its main path, to such a function. Beside a payload, the
//     subscription the message arrived on (a type with Unsubscribe, m.Sub) counts as
//     what it was given (if _, ok := subs[sub.Subject]; !ok { return }). This is found across
//     the checked module's packages (an analysis fact), and the finding names the
//     helper's silent return. A library's function (another module: a client's producer
//     that returns early when it is closed) is not followed.
//  7. A select that hands the message (or what was derived from it) on a channel next to
//     an empty default: when the channel is full, the message is gone
//     (select { case out <- m: default: }). A signal (case wake <- struct{}{}) is not
//     the message.
//  8. A step of the message's work whose error is thrown away: a call given the message
//     or something derived from it, every result dropped, as a statement of its own
//     (nc.Publish(subj, out)), assigned to _ (_ = ch.Publish(...), _, _ = svc.Fill(ctx,
//     ev)) or started as a goroutine (go c.handler(m), in a loop over messages in any
//     function). When the step fails the message ends as if its work were done. Not
//     reported: a settlement's own error (_ = m.Ack()), a reply (the requester's timeout
//     is its trace), a reading or decoding call (_ = json.Unmarshal(...)), a call whose
//     value is kept (ev, _ := decode(b): what is done with ev is judged where it is
//     used), a call given nothing from the message, and a function of the checked
//     module that records every failure before handing it back (see "What counts as
//     recording"). Outside message-handling code a dropped error is errcheck's.
//
// # What counts as recording
//
// A branch records something when, before the return (anywhere in the branch for rule 2),
// it
//
//   - returns an explicit value: a non-nil result that is neither error nor bool (an
//     outcome, a settlement label, messages to publish), or a non-nil error other than
//     the error of the settlement call itself (return m.Ack() records nothing);
//   - logs: log/slog, log, logrus (github.com/sirupsen/logrus), zap (go.uber.org/zap),
//     zerolog (an event's Msg, Msgf or Send; github.com/rs/zerolog), Watermill's
//     LoggerAdapter, fmt.Print*, fmt.Fprint* to any writer but a buffer in memory
//     (bytes.Buffer, strings.Builder), print and println; builders that emit nothing
//     (logrus.WithField, zerolog's Error()) do not count; and a logging library not
//     listed here, known by its family: a function or method of another module that
//     returns nothing, is named for a level (Error, Warnf, Infoln), takes values last
//     (Error(msg any, keyvals ...any)) and has a formatting sibling beside it, for its
//     level or another (Errorf(format string, args ...any), Printf), as charmbracelet/log's
//     package functions and powerman/structlog's Logger do; and a family of level
//     methods on any type (Warn(msg string) beside at least two of Debug, Info, Error
//     with the same signature, returning nothing), whatever its implementation filters;
//   - fails or logs a test: Error, Errorf, Fatal, Fatalf, Fail, FailNow, Log, Logf of
//     package testing;
//   - reports to an error tracker: sentry's CaptureException, CaptureMessage, CaptureEvent;
//   - adds a span event or status (AddEvent, RecordError, SetStatus of
//     go.opentelemetry.io/otel/trace), or a metric (Add or Record of an OpenTelemetry
//     instrument, Inc, Add or Observe of a Prometheus metric);
//   - answers the requester: Respond, RespondMsg or RespondJSON on a message or request
//     (Error too, on a request that responds), or a publish to the message's Reply;
//   - hands the problem on: calls a function value whose parameters include an error
//     with a non-nil error (an error callback), or sends anything on a channel (an
//     error, the message, a first ack forwarded to a waiter);
//   - logs through an interface, judged by its shape since whatever implements it is not
//     visible: a method of an interface (or a function value) that returns nothing and
//     takes a message or a format (a string, after an optional context) followed by
//     values (...any) or an error, with a level first or not: a team's Logger held in a
//     package variable, a framework's logger (log.Printf where log is such a value,
//     l.Error(msg, err), l.Warnf(format, args...), l.Logf(ErrorLevel, format, args...),
//     l.Log(ErrorLevel, err)), and a method taking only values (l.Error(err), Error(args
//     ...any)) when its interface has the formatting sibling (Errorf(format, args...));
//     and a function or method of that shape that hands its
//     message on (a server's logger that writes only when configured); and any method of
//     an interface of the checked module that a type declared beside it (or in the
//     package checked) implements with a method that records on its main path (a team's
//     Logger whose Error(args ...any) an adapter hands to logrus: known from the code,
//     not guessed from the shape);
//   - panics;
//   - is taken on a helper's empty answer that the helper explained: the body of if
//     row == nil, if !ok or if !accept(m), where row or ok holds, at every assignment,
//     the answer of a function of the checked module whose every nil (or false) in that
//     result comes after a recording on the way to it (a log line in its branch or on
//     its main path above), and whose other returns cannot be empty (&r, a composite
//     literal, new, make, true). A helper that never answers empty (a stub that always
//     says yes) explains nothing. Likewise the body of if err != nil, where err holds
//     the error of a function of the checked module that gives that result anything but
//     nil only after a recording on the way to it (if err := s.apply(ev); err != nil {
//     return }, apply logging each failure before handing it back); a failure handed
//     back as it came (return s.repo.Save(r)) explains nothing. This is found across the
//     module's packages (an analysis fact);
//   - calls a function or method that itself records on its main path (outside its own
//     branches and loops, panics aside), directly or through another such function. This
//     is found across packages (an analysis fact), so a shared helper that logs and
//     dead-letters counts wherever it is called from; a helper that records only
//     sometimes does not. Loudly's Decisions.Record counts this way, by what it does.
//
// Every one of these is decided from the callee's package and type: a method that happens
// to be called Error or Record on an unrelated type records nothing.
//
// A function literal written in the branch counts only when it is called right there
// (defer func() { ... }() or func() { ... }()), or handed to once.Do, which calls it
// before it returns; the body of go func() { ... }() may run
// after the message is gone and does not count.
//
// # Limits
//
// The analysis is mostly syntactic within one function: a helper is followed only for
// the silent return of rule 6, for whether it records on its main path, and for whether
// it explains its empty answers and failures (and judged itself when a handler hands it
// the message); it does not judge break, nor continue in a loop over NATS or AMQP
// messages that settles some of them, and the implicit else is seen only when nothing
// but a settlement follows the if. Which values are derived from the message is found by
// assignment (and by json.Unmarshal(data, &v)-style calls, a pointer variable handed
// where any value goes counting as &v (ev := &Event{}; json.Unmarshal(data, ev)), and
// decoder methods, req.Unmarshal(data) error, a method answering only an error of a
// variable declared without a value, var ev Event; err = ev.Deserialize(fields), which
// fills it in, and a decoded request, a pointer with such a method, handed to a function
// beside the message), not by following pointers. A return whose condition mentions
// nothing derived from the message (a closed subscriber, a node that is not the leader)
// is taken for a decision about it only when it stands before the work in the callback's
// own body (or, in a Kafka record loop, before the record's work, even from inside an
// enclosing if); nested in another branch, or in a handler's loop, it is taken for no
// decision, although it can drop it. A loop over Kafka records is judged wherever it is,
// without knowing whether its reader commits (a reader outside a consumer group commits
// nothing, and a skip there drops nothing). A helper that settles is followed one level only, and only when
// it queues the settlement; a requeue flag that is not a constant at the call (or in the
// helper) leaves a Nack a retry. A log in a nested branch about the settlement's own
// failure (err := saver.SaveAck(&msg); if err != nil { log }) still counts as the
// branch's trace. Watermill CQRS handlers, which receive decoded events rather than
// messages, are not recognised. The corpus behind these rules, with its precision and
// recall, is in README.md next to this file.
//
// # Suppressing a finding
//
// A finding the team has decided is correct is kept quiet with a directive that says why,
// on the line of the finding or the line just above it (for an empty error branch,
// anywhere from the if to its closing brace):
//
//	if replayed {
//		return nil //silentcheck:ok the reconciler accounts for replays
//	}
//
// (// silentcheck:ok, with a space, works too.) A directive without a reason suppresses
// nothing and is itself reported: the reason is the trace. -kept prints every finding a
// directive kept quiet, with its reason; -handlers prints every function judged as
// message-handling code, to see what a clean run covered.
package silentcheck

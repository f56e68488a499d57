package scaffold

import (
	"fmt"
	"strconv"
	"strings"

	"loudly/pkg/deadletter"
)

// stream is a JetStream stream as services/events (or pkg/deadletter) declares it.
type streamDecl struct {
	Name        string
	Subjects    []string
	Description string // of a stream the scaffold declares
}

func streamHolding(streams []streamDecl, subject string) (streamDecl, bool) {
	for _, s := range streams {
		for _, p := range s.Subjects {
			if covers(p, subject) {
				return s, true
			}
		}
	}
	return streamDecl{}, false
}

func streamList(streams []streamDecl) string {
	var out []string
	for _, s := range streams {
		out = append(out, s.Name+" ("+strings.Join(s.Subjects, ", ")+")")
	}
	return strings.Join(out, ", ")
}

// planConsumes finds the stream that holds the consumed subject and the event types that
// travel on it, each of which gets a typed handler. A concrete subject that no stream holds
// is a new event type: the service declares it in its own package, with a stream of its
// own, so nothing shared is edited. A wildcard there, or a subject of an existing stream
// with no known event type (another service's stream), is refused: the runner would
// dead-letter every message as unknown_type.
func (sc *Scaffold) planConsumes(spec Spec, streams []streamDecl) error {
	subject := spec.Consumes
	if err := checkSubject("--consumes", subject, true); err != nil {
		return err
	}
	if strings.HasPrefix(subject, deadletter.SubjectPrefix) {
		return refuse("--consumes %q is the dead-letter stream: letters are not events; `loudly dlq` lists and redrives them", subject)
	}
	st, ok := streamHolding(streams, subject)
	if !ok {
		if strings.ContainsAny(subject, "*>") {
			return refuse("--consumes %q: no stream holds it (streams: %s). A new event type needs a concrete subject "+
				"(payments.requested), which the service then declares in its own package with a stream of its own", subject, streamList(streams))
		}
		own, err := newStream(subject, streams, "--consumes", "Events consumed by the "+spec.Name+" service.")
		if err != nil {
			return err
		}
		goName := camel(subject)
		prefix := spec.Name
		if len(prefix) > 3 {
			prefix = prefix[:3]
		}
		sc.data.Own = &ownEvent{Type: subject, Go: goName, Subject: subject, Key: prefix + "-0001"}
		sc.data.OwnStream = &own
		sc.data.Stream = own.Name
		sc.data.Handlers = []handlerData{{Event: goName + "Event", Payload: goName, Method: "handle",
			SampleKey: strconv.Quote(prefix + "-0001"), SampleData: goName + "{}", Subject: subject}}
		sc.notes = append(sc.notes, fmt.Sprintf("%s is a new event type, declared with its payload and validation in services/%s/%s/events.go, "+
			"on a new stream %s (%s) the service ensures at start-up. Give %s the fields its producers send.",
			subject, spec.Name, spec.Name, own.Name, own.Subjects[0], goName))
		return nil
	}
	sc.data.Stream = st.Name
	for _, s := range Samples {
		if covers(subject, s.Subject) {
			sc.data.Handlers = append(sc.data.Handlers, handlerData{Event: "events." + s.Event, Payload: "events." + s.Payload,
				Method: "handle" + strings.TrimPrefix(s.Type, "Type"), SampleKey: "uuid.NewString()", SampleData: s.Data, Subject: s.Subject})
		}
	}
	if len(sc.data.Handlers) == 1 {
		sc.data.Handlers[0].Method = "handle"
	}
	if len(sc.data.Handlers) > 0 {
		return nil
	}
	var known []string
	for _, s := range Samples {
		known = append(known, s.Subject)
	}
	return refuse("--consumes %q: no event type of services/events travels on it (known subjects: %s), and its stream %s belongs to "+
		"another service, so the runner would dead-letter every message as unknown_type. Define the event where its producer's "+
		"contract is (services/events: its type, payload and validation) and add a sample to Samples in internal/scaffold "+
		"(docs/template.md)", subject, strings.Join(known, ", "), st.Name)
}

// newStream is the stream for a subject no stream holds: named after its first token and
// holding every subject under it ("shipping.scheduled" → SHIPPING, "shipping.>"). It is
// refused when JetStream would refuse it next to the existing streams.
func newStream(subject string, streams []streamDecl, flagName, description string) (streamDecl, error) {
	first := strings.Split(subject, ".")[0]
	pattern := first + ".>"
	name := strings.ToUpper(strings.ReplaceAll(first, "-", "_"))
	for _, st := range streams {
		if st.Name == name {
			return streamDecl{}, refuse("%s %q: a new stream for it would be named %s, which exists with other subjects (%s)", flagName, subject, name, streamList([]streamDecl{st}))
		}
		for _, p := range st.Subjects {
			if overlaps(p, pattern) {
				return streamDecl{}, refuse("%s %q: a new stream %s (%s) would overlap stream %s (%s), which JetStream refuses", flagName, subject, name, pattern, st.Name, p)
			}
		}
	}
	return streamDecl{Name: name, Subjects: []string{pattern}, Description: description}, nil
}

// planPublishes finds or adds the stream the service publishes into. A subject no stream
// holds gets a new stream (newStream), declared in services/events so that every service
// that consumes it ensures it at start-up like the others.
func (sc *Scaffold) planPublishes(spec Spec, streams []streamDecl) error {
	subject := spec.Publishes
	if err := checkSubject("--publishes", subject, false); err != nil {
		return err
	}
	if covers(spec.Consumes, subject) {
		return refuse("--publishes %q is inside --consumes %q: %s would consume its own events", subject, spec.Consumes, spec.Name)
	}
	if strings.HasPrefix(subject, deadletter.SubjectPrefix) {
		return refuse("--publishes %q is the dead-letter stream, which only the consumer runner writes to", subject)
	}
	sc.data.Publishes = subject
	if st, ok := streamHolding(streams, subject); ok {
		sc.data.PublishStream = st.Name
		sc.notes = append(sc.notes, fmt.Sprintf("%s goes into the existing stream %s: every consumer whose filter covers it will receive it, "+
			"so declare its event type (an envelope.Type with its payload and validation) before %s publishes it.", subject, st.Name, spec.Name))
		return nil
	}
	st, err := newStream(subject, streams, "--publishes", "Events published by the "+spec.Name+" service.")
	if err != nil {
		return err
	}
	name, pattern := st.Name, st.Subjects[0]
	sc.data.PublishStream = name
	src, err := sc.read(StreamsFile)
	if err != nil {
		return err
	}
	end, err := sliceEnd(src, "Streams")
	if err != nil {
		return fmt.Errorf("%s: %w", StreamsFile, err)
	}
	entry := fmt.Sprintf(`	{
		Name:        %q,
		Description: "Events published by the %s service.",
		Subjects:    []string{%q},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      72 * time.Hour,
		Duplicates:  2 * time.Minute,
	},
`, name, spec.Name, pattern)
	sc.notes = append(sc.notes, fmt.Sprintf("%s is a new stream for %s; declare the event type %s carries (an envelope.Type with its payload "+
		"and validation, in services/events if other services consume it) before anything consumes it.", name, pattern, subject))
	return sc.changeGo(StreamsFile, src, end, entry, "adds stream "+name+" ("+pattern+") for what "+spec.Name+" publishes")
}

package scaffold

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"loudly/pkg/deadletter"
)

// streamDecl is a JetStream stream as the repository declares it: in services/events, in
// a service's own package, or pkg/deadletter's.
type streamDecl struct {
	Name        string
	Subjects    []string
	Description string // of a stream the scaffold declares
	// List is the Go expression of the list that holds it (events.Streams, NAME.Streams,
	// Streams in the service's own package), and Import that list's package; the
	// dead-letter stream, which every service ensures, has neither.
	List, Import string
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
// travel on it (known: those of services/events and those other services declared),
// grouped by payload type into typed batch handlers. A concrete subject that no stream
// holds is a new event type: the service declares it in its own package, with a stream of
// its own, so nothing shared is edited. A wildcard there, or a subject of an existing
// stream with no known event type, is refused: the runner would dead-letter every message
// as unknown_type.
func (sc *Scaffold) planConsumes(spec Spec, streams []streamDecl, known []eventType) error {
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
		own.List = "Streams"
		t := sc.declareOwn(subject, false)
		sc.data.OwnStream = &own
		sc.data.Stream = own.Name
		sc.data.Handlers = []eventType{t}
		sc.ensure(own)
		sc.notes = append(sc.notes, fmt.Sprintf("%s is a new event type, declared with its payload and validation in services/%s/%s/events.go, "+
			"on a new stream %s (%s) the service ensures at start-up. Give %s the fields its producers send.",
			subject, spec.Name, spec.Name, own.Name, own.Subjects[0], camel(subject)))
		return sc.route()
	}
	sc.data.Stream = st.Name
	sc.ensure(st)
	for _, t := range known {
		if covers(subject, t.Subject) {
			sc.data.Handlers = append(sc.data.Handlers, t)
		}
	}
	if len(sc.data.Handlers) > 0 {
		return sc.route()
	}
	var subjects []string
	for _, t := range known {
		subjects = append(subjects, t.Subject)
	}
	return refuse("--consumes %q: no known event type travels on it (known subjects: %s), and its stream %s belongs to "+
		"another service, so the runner would dead-letter every message as unknown_type. Define the event where its producer's "+
		"contract is (services/events: its type, payload and validation) and add a sample to Samples in internal/scaffold "+
		"(docs/template.md)", subject, strings.Join(subjects, ", "), st.Name)
}

// declareOwn is an event type the service declares in its own package (events.go).
func (sc *Scaffold) declareOwn(subject string, published bool) eventType {
	goName := camel(subject)
	prefix := sc.data.Name[:min(3, len(sc.data.Name))]
	sc.data.OwnTypes = append(sc.data.OwnTypes, ownEvent{Type: subject, Go: goName, Subject: subject, Key: prefix + "-0001", Published: published})
	return eventType{Type: subject, Subject: subject, Event: goName + "Event", Payload: goName, SampleData: goName + "{}",
		KeyExpr: strconv.Quote(prefix+"-") + " + uuid.NewString()[:8]"}
}

// route groups the consumed event types by payload type: one typed batch handler each,
// named handle when there is one.
func (sc *Scaffold) route() error {
	for _, t := range sc.data.Handlers {
		i := slices.IndexFunc(sc.data.Routes, func(r routeData) bool { return r.Payload == t.Payload })
		if i < 0 {
			_, bare, _ := strings.Cut(t.Payload, ".")
			if bare == "" {
				bare = t.Payload
			}
			sc.data.Routes = append(sc.data.Routes, routeData{Payload: t.Payload, Method: "handle" + bare})
			i = len(sc.data.Routes) - 1
		}
		r := &sc.data.Routes[i]
		r.Events = append(r.Events, t.Event)
		r.Types = strings.TrimPrefix(r.Types+", "+t.Type, ", ")
		sc.use(t.Import)
	}
	if len(sc.data.Routes) == 1 {
		sc.data.Routes[0].Method = "handle"
	}
	return nil
}

// ensure adds st's list to those the service ensures at start-up (Spec.Streams).
func (sc *Scaffold) ensure(st streamDecl) {
	if st.List == "" || slices.Contains(sc.lists, st.List) {
		return
	}
	sc.lists = append(sc.lists, st.List)
	sc.use(st.Import)
}

// use adds a package the service's files may import.
func (sc *Scaffold) use(importPath string) {
	if importPath != "" && !slices.Contains(sc.data.Imports, importPath) {
		sc.data.Imports = append(sc.data.Imports, importPath)
	}
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

// planPublishes finds or adds the stream the service publishes into, and the event type it
// publishes: a known one that travels on the subject, or one it declares in its own
// package. A subject no stream holds gets a new stream (newStream), declared in
// services/events so that every service that consumes it ensures it at start-up like the
// others.
func (sc *Scaffold) planPublishes(spec Spec, streams []streamDecl, known []eventType) error {
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
	if i := slices.IndexFunc(known, func(t eventType) bool { return t.Subject == subject }); i >= 0 {
		t := known[i]
		sc.data.Pub = &t
		sc.use(t.Import)
	} else {
		t := sc.declareOwn(subject, true)
		sc.data.Pub = &t
		sc.notes = append(sc.notes, fmt.Sprintf("%s is a new event type the service publishes, declared with its payload and validation in "+
			"services/%s/%s/events.go: give %s the fields its consumers need.", subject, spec.Name, spec.Name, camel(subject)))
	}
	if st, ok := streamHolding(streams, subject); ok {
		sc.data.PublishStream = st.Name
		sc.ensure(st)
		return nil
	}
	st, err := newStream(subject, streams, "--publishes", "Events published by the "+spec.Name+" service.")
	if err != nil {
		return err
	}
	name, pattern := st.Name, st.Subjects[0]
	sc.data.PublishStream = name
	st.List, st.Import = "events.Streams", sc.data.Module+"/services/events"
	sc.ensure(st)
	sc.newShared = name
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
	sc.notes = append(sc.notes, fmt.Sprintf("%s is a new stream for %s in services/events, which every service that ensures the "+
		"shared streams ensures at start-up.", name, pattern))
	return sc.changeGo(StreamsFile, src, end, entry, "adds stream "+name+" ("+pattern+") for what "+spec.Name+" publishes")
}

// Package scaffold writes a new service into a Loudly repository: the files of the
// templates under templates/service (its main.go and package, on the service base
// pkg/service), and the edits that put it everywhere a service must be (the list of
// services, the compose demo, Prometheus's scrape jobs, the runbooks). `loudly new
// service` is a thin command around it; docs/template.md describes every file it writes.
//
// Everything is computed and checked first (Plan), written second (Write): a refused or
// failed plan changes nothing.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"go.yaml.in/yaml/v3"

	"loudly/pkg/deadletter"
	"loudly/services"
	"loudly/services/events"
)

//go:embed templates
var scaffoldTemplates embed.FS

// Spec is what the command line asks for.
type Spec struct {
	Name      string
	Consumes  string // filter subject; may end in a wildcard
	Publishes string // subject, or ""
}

// Refusal is a spec the scaffold will not act on (the command exits 2): a name or a
// subject it cannot use, or one that is taken.
type Refusal struct{ msg string }

func (r *Refusal) Error() string { return r.msg }

func refuse(format string, args ...any) error { return &Refusal{fmt.Sprintf(format, args...)} }

// ModuleRoot is the directory of the go.mod enclosing the current directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod in %s or above it: run this in the repository, or give -root", dir)
		}
	}
}

// The repository files the scaffold reads and edits, relative to the root.
const (
	ServicesFile    = "services/services.go"
	StreamsFile     = "services/events/streams.go"
	ComposeFile     = "deploy/compose/docker-compose.yml"
	PrometheusFile  = "deploy/compose/prometheus/prometheus.yml"
	RunbookIndex    = "docs/runbooks/README.md"
	runbookTemplate = "templates/runbook.md.tmpl"
)

// Scaffold is everything one `new service` writes, computed before anything is written.
type Scaffold struct {
	root string
	data serviceData
	// files are new (created) and changed files, by path relative to root, in the order
	// they are reported.
	created, changed []fileChange
	notes            []string // things the user should know, printed with the next steps
}

type fileChange struct {
	path, what string
	data       []byte
}

// serviceData is what the templates see.
type serviceData struct {
	Module        string // the Go module path (go.mod), which the imports start with
	Name          string
	Camel         string
	Port          int
	Schema        string
	Consumes      string
	Stream        string
	Publishes     string
	PublishStream string
	AlertName     string
	Panel         string
	Expr          string

	// Handlers are the typed handlers generated, one per event type the consumer
	// receives; the first one's sample is what the generated test publishes.
	Handlers []handlerData
	// Own is the event type the service declares in its own package (events.go), when it
	// consumes a subject no event type of services/events travels on; OwnStream is the
	// stream it declares for it when no stream holds the subject either.
	Own       *ownEvent
	OwnStream *streamDecl
}

// handlerData is one typed handler: the event type (a Go expression naming an
// *envelope.Type), its payload type, the method, and a sample event for the test.
type handlerData struct {
	Event, Payload, Method string
	SampleKey, SampleData  string // Go expressions
	Subject                string // the subject the sample is published on
}

// ownEvent is an event type a scaffolded service declares itself.
type ownEvent struct {
	Type    string // its name, the envelope's "type": the subject
	Go      string // its Go name: PaymentsRequested
	Subject string
	Key     string // a sample key, a reference that is no UUID: pay-0001
}

// Sample is an event type of services/events that a scaffolded consumer can be generated
// for: the subject it travels on, its type constant, its envelope.Type and payload type,
// and a valid payload (Go source), which the generated test publishes.
type Sample struct {
	Subject string
	Type    string // name of the type constant in package events
	Event   string // name of the *envelope.Type variable in package events
	Payload string // name of the payload type in package events
	Data    string
}

// Samples are the event types of services/events a consumer can be scaffolded for; a new
// event type of services/events gets a line here (TestEventSamples_CoverEverySubject checks
// there is one per subject). A subject no event type travels on gets an event type of the
// service's own instead.
var Samples = []Sample{
	{events.SubjectOrderPlaced, "TypeOrderPlaced", "OrderPlacedEvent", "OrderPlaced", `events.OrderPlaced{CustomerID: "c-1", Lines: []events.Line{{SKU: "BOOK-001", Quantity: 1}}}`},
	{events.SubjectInventoryReserved, "TypeInventoryReserved", "InventoryReservedEvent", "InventoryResult", `events.InventoryResult{}`},
	{events.SubjectInventoryRejected, "TypeInventoryRejected", "InventoryRejectedEvent", "InventoryResult", `events.InventoryResult{Reason: "insufficient_stock", SKU: "LIMITED-001"}`},
}

// Plan checks spec against the repository at root and computes every file to
// create and change. A *Refusal is a spec the scaffold will not act on.
func Plan(root string, spec Spec) (*Scaffold, error) {
	sc := &Scaffold{root: root}
	if err := checkName(spec.Name); err != nil {
		return nil, err
	}
	module, err := ModulePath(root)
	if err != nil {
		return nil, err
	}
	list, err := sc.read(ServicesFile)
	if err != nil {
		return nil, fmt.Errorf("%w (is %s a Loudly repository?)", err, root)
	}
	existing, listEnd, err := parseServiceList(list)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ServicesFile, err)
	}
	compose, err := sc.read(ComposeFile)
	if err != nil {
		return nil, err
	}
	composeServices, err := yamlKeys(compose, "services")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ComposeFile, err)
	}
	svc := services.Service{Name: spec.Name, Schema: schemaFor(spec.Name), Outbox: spec.Publishes != ""}
	alert := "Loudly" + svc.CamelName() + "Down"
	switch {
	case pathExists(filepath.Join(root, "services", spec.Name)):
		return nil, refuse("services/%s already exists: choose another NAME", spec.Name)
	case slices.ContainsFunc(existing, func(s services.Service) bool { return s.Name == spec.Name }):
		return nil, refuse("%s is already in %s: choose another NAME", spec.Name, ServicesFile)
	case slices.Contains(composeServices, spec.Name):
		return nil, refuse("the compose demo already runs a service named %s (%s): choose another NAME", spec.Name, ComposeFile)
	case pathExists(filepath.Join(root, "docs/runbooks", alert+".md")):
		return nil, refuse("docs/runbooks/%s.md already exists: choose another NAME", alert)
	}
	for _, s := range existing {
		if s.Schema == svc.Schema {
			return nil, refuse("service %s already owns the PostgreSQL schema %s: choose another NAME", s.Name, svc.Schema)
		}
	}
	svc.Port = FreePort(existing)
	svc.About = "consumes " + spec.Consumes
	if spec.Publishes != "" {
		svc.About += ", publishes " + spec.Publishes
	}

	streams, err := parseStreams(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", StreamsFile, err)
	}
	shared := slices.Clone(streams) // events.Streams as they are
	sc.data = serviceData{
		Module: module, Name: spec.Name, Camel: svc.CamelName(), Port: svc.Port, Schema: svc.Schema,
		Consumes: spec.Consumes, AlertName: alert, Panel: spec.Name + ": instances up",
		Expr: fmt.Sprintf(`(sum by (job) (up{job=%[1]q}) or absent(up{job=%[1]q}) - 1) < 1`, spec.Name),
	}
	if err := sc.planConsumes(spec, streams); err != nil {
		return nil, err
	}
	if sc.data.OwnStream != nil {
		streams = append(streams, *sc.data.OwnStream)
	}
	if spec.Publishes != "" {
		if err := sc.planPublishes(spec, streams); err != nil {
			return nil, err
		}
	}

	if err := sc.render(); err != nil {
		return nil, err
	}
	entry := fmt.Sprintf("\t{Name: %q, Port: %d, Schema: %q, Outbox: %t,\n\t\tAbout: %q},\n", svc.Name, svc.Port, svc.Schema, svc.Outbox, svc.About)
	if err := sc.changeGo(ServicesFile, list, listEnd, entry, "adds "+spec.Name+" to the list dashboards, alerts and the compose tests are generated from"); err != nil {
		return nil, err
	}
	if compose, err = sc.editCompose(compose, existing, svc); err != nil {
		return nil, err
	}
	if err := sc.editCredentials(compose, svc, shared); err != nil {
		return nil, err
	}
	if err := sc.editPrometheus(existing, svc); err != nil {
		return nil, err
	}
	if err := sc.editRunbookIndex(); err != nil {
		return nil, err
	}
	return sc, nil
}

// Names.

var lowerIdent = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// predeclared are Go's predeclared identifiers: legal package names, and a trap.
var predeclared = strings.Fields(`any bool byte comparable complex64 complex128 error float32 float64 int int8
	int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr true false iota nil append cap
	clear close complex copy delete imag len make max min new panic print println real recover`)

// checkName refuses a NAME that is not a lower-case Go package name or that the wiring
// cannot use.
func checkName(name string) error {
	suggest := strings.Map(func(r rune) rune {
		switch {
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return -1
	}, name)
	suggest = strings.TrimLeft(suggest, "0123456789_")
	hint := ""
	if suggest != "" && suggest != name && lowerIdent.MatchString(suggest) && !token.IsKeyword(suggest) {
		hint = fmt.Sprintf(" (%s would do)", suggest)
	}
	switch {
	case !lowerIdent.MatchString(name):
		return refuse("NAME %q is not a valid Go package name: use lower-case letters, digits and underscores, starting with a letter%s", name, hint)
	case token.IsKeyword(name):
		return refuse("NAME %q is a Go keyword, which cannot name a package", name)
	case slices.Contains(predeclared, name):
		return refuse("NAME %q is a predeclared Go identifier (a package named so would shadow it): choose another NAME", name)
	case name == "main" || name == "os" || name == "lifecycle":
		return refuse("NAME %q cannot be used: the program's main.go is package main and imports os and lifecycle", name)
	case len(name) > 20:
		return refuse("NAME %q is longer than 20 characters (it names an alert, a compose service, a schema and a consumer)", name)
	}
	return nil
}

// postgresReserved are PostgreSQL's reserved key words (and those reserved but allowed as
// function or type names): none of them can name a schema unquoted.
var postgresReserved = strings.Fields(`all analyse analyze and any array as asc asymmetric authorization binary
	both case cast check collate collation column concurrently constraint create cross current_catalog
	current_date current_role current_schema current_time current_timestamp current_user default deferrable
	desc distinct do else end except false fetch for foreign freeze from full grant group having ilike in
	initially inner intersect into is isnull join lateral leading left like limit localtime localtimestamp
	natural not notnull null offset on only or order outer overlaps placing primary references returning
	right select session_user similar some symmetric system_user table tablesample then to trailing true
	union unique user using variadic verbose when where window with`)

// schemaFor is the PostgreSQL schema of a service: its name, unless PostgreSQL reserves the
// name (user → user_svc) or its pg_ prefix (pg_x → svc_pg_x).
func schemaFor(name string) string {
	switch {
	case slices.Contains(postgresReserved, name):
		return name + "_svc"
	case strings.HasPrefix(name, "pg_"):
		return "svc_" + name
	}
	return name
}

// FreePort is one above the highest port of the listed services, skipping the ports the
// compose demo's other programs use, so that every service can also run side by side on
// one machine.
func FreePort(existing []services.Service) int {
	taken := map[int]bool{3000: true, 3100: true, 3200: true, 4222: true, 4317: true, 4318: true, 5432: true,
		7777: true, 8222: true, 8888: true, 8889: true, 9090: true, 9464: true}
	port := 8079
	for _, s := range existing {
		taken[s.Port] = true
		port = max(port, s.Port)
	}
	for port++; taken[port]; port++ {
	}
	return port
}

// Subjects.

var subjectToken = regexp.MustCompile(`^[a-z0-9_-]+$`)

// checkSubject refuses what is not a NATS subject of lower-case tokens. A filter may use
// the wildcards * (one token) and > (the rest, last), but not in its first token, which
// names its stream.
func checkSubject(flagName, subject string, filter bool) error {
	tokens := strings.Split(subject, ".")
	for i, t := range tokens {
		switch {
		case filter && i > 0 && (t == "*" || t == ">" && i == len(tokens)-1):
		case !subjectToken.MatchString(t):
			what := "lower-case letters, digits, '-' and '_'"
			if filter {
				what += " (or a wildcard * or a final > after the first token)"
			}
			return refuse("%s %q is not a subject this scaffold accepts: tokens separated by '.', each of %s", flagName, subject, what)
		}
	}
	if len(tokens) < 2 {
		return refuse("%s %q: a subject has at least two tokens, the first naming its stream (orders.placed)", flagName, subject)
	}
	return nil
}

// covers reports whether every subject that filter matches is matched by pattern.
func covers(pattern, filter string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(filter, ".")
	for i, pt := range p {
		if pt == ">" {
			return len(s) > i
		}
		if i >= len(s) || s[i] == ">" || pt != "*" && pt != s[i] {
			return false
		}
	}
	return len(p) == len(s)
}

// overlaps reports whether some subject matches both a and b.
func overlaps(a, b string) bool {
	x, y := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; ; i++ {
		if i == len(x) || i == len(y) {
			return len(x) == len(y)
		}
		if x[i] == ">" || y[i] == ">" {
			return true
		}
		if x[i] != "*" && y[i] != "*" && x[i] != y[i] {
			return false
		}
	}
}

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

// camel is the Go name of a subject: payments.requested → PaymentsRequested.
func camel(subject string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(subject, func(r rune) bool { return r == '.' || r == '-' || r == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
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

// Reading the repository.

func (sc *Scaffold) read(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(sc.root, filepath.FromSlash(rel)))
}

func pathExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// ModulePath is the module path of root's go.mod: the scaffold's imports start with it,
// so it keeps working after the module is renamed (docs/template.md).
func ModulePath(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strconv.Unquote(`"` + strings.Trim(f[1], `"`) + `"`)
		}
	}
	return "", errors.New("go.mod has no module line")
}

// sliceEnd returns the offset of the closing brace of the slice literal assigned to the
// package-level variable name in src: where an element is appended.
func sliceEnd(src []byte, name string) (int, error) {
	lit, fset, err := sliceLiteral(src, name)
	if err != nil {
		return 0, err
	}
	return fset.Position(lit.Rbrace).Offset, nil
}

func sliceLiteral(src []byte, name string) (*ast.CompositeLit, *token.FileSet, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, 0)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name != name || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.CompositeLit); ok {
					return lit, fset, nil
				}
			}
		}
	}
	return nil, nil, fmt.Errorf("no slice literal assigned to var %s", name)
}

// fields reads the keyed fields of a composite literal whose values are literals or
// constants (consts resolves constant names).
func literalFields(lit *ast.CompositeLit, consts map[string]string) map[string]string {
	out := map[string]string{}
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, _ := kv.Key.(*ast.Ident)
		if key == nil {
			continue
		}
		switch v := kv.Value.(type) {
		case *ast.BasicLit:
			out[key.Name] = v.Value
			if s, err := strconv.Unquote(v.Value); err == nil {
				out[key.Name] = s
			}
		case *ast.Ident:
			out[key.Name] = v.Name
			if s, ok := consts[v.Name]; ok {
				out[key.Name] = s
			}
		case *ast.CompositeLit: // []string{...}: joined with spaces
			var parts []string
			for _, el := range v.Elts {
				switch x := el.(type) {
				case *ast.BasicLit:
					s, _ := strconv.Unquote(x.Value)
					parts = append(parts, s)
				case *ast.Ident:
					parts = append(parts, consts[x.Name])
				}
			}
			out[key.Name] = strings.Join(parts, " ")
		}
	}
	return out
}

// parseServiceList reads services.All from services/services.go.
func parseServiceList(src []byte) ([]services.Service, int, error) {
	lit, fset, err := sliceLiteral(src, "All")
	if err != nil {
		return nil, 0, err
	}
	var out []services.Service
	for _, e := range lit.Elts {
		el, ok := e.(*ast.CompositeLit)
		if !ok {
			return nil, 0, errors.New("All has an element that is not a Service literal")
		}
		f := literalFields(el, nil)
		port, _ := strconv.Atoi(f["Port"])
		out = append(out, services.Service{Name: f["Name"], Port: port, Schema: f["Schema"], Outbox: f["Outbox"] == "true"})
	}
	return out, fset.Position(lit.Rbrace).Offset, nil
}

// parseStreams reads the streams of services/events (events.Streams) from root, and adds the
// dead-letter stream.
func parseStreams(root string) ([]streamDecl, error) {
	dir := filepath.Join(root, "services", "events")
	consts := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if vs, ok := n.(*ast.ValueSpec); ok {
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if bl, ok := vs.Values[i].(*ast.BasicLit); ok && bl.Kind == token.STRING {
							consts[name.Name], _ = strconv.Unquote(bl.Value)
						}
					}
				}
			}
			return true
		})
	}
	src, err := os.ReadFile(filepath.Join(root, StreamsFile))
	if err != nil {
		return nil, err
	}
	lit, _, err := sliceLiteral(src, "Streams")
	if err != nil {
		return nil, err
	}
	var out []streamDecl
	for _, e := range lit.Elts {
		if el, ok := e.(*ast.CompositeLit); ok {
			f := literalFields(el, consts)
			out = append(out, streamDecl{Name: f["Name"], Subjects: strings.Fields(f["Subjects"])})
		}
	}
	out = append(out, streamDecl{Name: deadletter.Stream, Subjects: deadletter.StreamConfig.Subjects})
	return out, nil
}

// yamlKeys lists the keys of the mapping at key of a YAML document's top level.
func yamlKeys(src []byte, key string) ([]string, error) {
	m, err := yamlChild(src, key)
	if err != nil {
		return nil, err
	}
	var keys []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys = append(keys, m.Content[i].Value)
	}
	return keys, nil
}

// yamlChild returns the node at key of a YAML document's top-level mapping.
func yamlChild(src []byte, key string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a YAML mapping")
	}
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == key {
			return top.Content[i+1], nil
		}
	}
	return nil, fmt.Errorf("no %s", key)
}

// Writing.

// render executes the templates: the service's files under services/NAME (the templates'
// pkg directory becomes the package directory NAME) and its runbook.
func (sc *Scaffold) render() error {
	d := sc.data
	var files []fileChange
	err := fs.WalkDir(scaffoldTemplates, "templates/service", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, "templates/service/"), ".tmpl")
		if strings.HasSuffix(p, "/events.go.tmpl") && d.Own == nil {
			return nil // it consumes event types of services/events
		}
		if dir, file, ok := strings.Cut(rel, "/"); ok && dir == "pkg" {
			rel = d.Name + "/" + file
		}
		b, err := renderTemplate(p, d)
		if err != nil {
			return err
		}
		files = append(files, fileChange{path: "services/" + d.Name + "/" + rel, data: b, what: filePurpose(rel)})
		return nil
	})
	if err != nil {
		return err
	}
	runbook, err := renderTemplate(runbookTemplate, d)
	if err != nil {
		return err
	}
	files = append(files, fileChange{path: "docs/runbooks/" + d.AlertName + ".md", data: runbook,
		what: "runbook skeleton of " + d.AlertName + " (its alert comes from go generate ./alerts/...): complete it"})
	for _, f := range files {
		if pathExists(filepath.Join(sc.root, filepath.FromSlash(f.path))) {
			return refuse("%s already exists", f.path)
		}
	}
	sc.created = files
	return nil
}

// execute renders one template; Go source comes out gofmt'ed.
func renderTemplate(name string, d serviceData) ([]byte, error) {
	t, err := template.ParseFS(scaffoldTemplates, name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, err
	}
	if strings.HasSuffix(name, ".go.tmpl") {
		src, err := format.Source(b.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s renders invalid Go: %w", name, err)
		}
		return src, nil
	}
	return b.Bytes(), nil
}

// purpose is what a generated file is for, as the report prints it (docs/template.md says
// more).
func filePurpose(rel string) string {
	_, file, _ := strings.Cut(rel, "/")
	switch {
	case rel == "main.go":
		return "the program: lifecycle.Main wiring only (signals, config, telemetry, run, shutdown)"
	case file == "config.go":
		return "Config and ConfigFromEnv: the variables every service reads (service.ConfigFromEnv) and its own"
	case file == "service.go":
		return "New: the service base (pkg/service) and its business wiring: consumer, outbox, idempotency"
	case file == "events.go":
		return "its own event type (payload, validation, registration) and the stream that carries it"
	case file == "handle.go":
		return "the typed handler: rejects every event as not_implemented until you write it"
	case file == "store.go":
		return "its PostgreSQL state: remember (idempotency, pkg/idempotency)"
	case file == "service_test.go":
		return "the service against real NATS and PostgreSQL: health, the decision, the ack, idempotency"
	}
	return ""
}

// changeGo inserts text at offset of a Go file and formats the result.
func (sc *Scaffold) changeGo(rel string, src []byte, offset int, text, what string) error {
	out := slices.Concat(src[:offset], []byte(text), src[offset:])
	formatted, err := format.Source(out)
	if err != nil {
		return fmt.Errorf("%s: the edit would not compile: %w", rel, err)
	}
	sc.changed = append(sc.changed, fileChange{path: rel, data: formatted, what: what})
	return nil
}

// blockEnd is the index of the last line of the YAML block that starts at line start (0
// based): the lines after it that are indented deeper, up to the next line at its
// indentation or less, without the comments and blank lines before that line.
func blockEnd(lines []string, start int) int {
	indent := len(lines[start]) - len(strings.TrimLeft(lines[start], " "))
	end := start
	for i := start + 1; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i])
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(lines[i])-len(strings.TrimLeft(lines[i], " ")) <= indent {
			break
		}
		end = i
	}
	return end
}

// insertAfterBlock appends text to the last line of the block starting at line start: text
// starts with the newline that ends that line.
func insertAfterBlock(src []byte, start int, text string) []byte {
	lines := strings.SplitAfter(string(src), "\n")
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\n")
	}
	end := blockEnd(lines, start)
	var b strings.Builder
	for i, l := range lines {
		b.WriteString(l)
		if i == end {
			b.WriteString(text)
		}
		if i < len(lines)-1 {
			b.WriteString("\n")
		}
	}
	return []byte(b.String())
}

// editCompose adds the service to the compose demo after the last listed service, in
// their style: the shared Loudly image, its program, the shared environment with its own
// PostgreSQL role and NATS user, a healthcheck its distroless image can run, and start-up
// after its dependencies. It returns the edited file, which editCredentials completes.
func (sc *Scaffold) editCompose(src []byte, existing []services.Service, svc services.Service) ([]byte, error) {
	m, err := yamlChild(src, "services")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ComposeFile, err)
	}
	start := -1
	for i := 0; i+1 < len(m.Content); i += 2 {
		if slices.ContainsFunc(existing, func(s services.Service) bool { return s.Name == m.Content[i].Value }) {
			start = m.Content[i].Line - 1
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%s: none of the listed services is a compose service", ComposeFile)
	}
	n := svc.Name
	block := fmt.Sprintf(`

  %[1]s:
    image: *loudly-image
    build: *loudly-build
    pull_policy: build
    restart: unless-stopped
    command: ["/app/%[1]s"]
    environment:
      <<: *service-env
      OTEL_SERVICE_NAME: %[1]s
      HTTP_ADDR: ":%[2]d"
      DATABASE_URL: postgres://%[3]s:${%[4]s}@postgres:5432/loudly?sslmode=disable
      NATS_USER: %[5]s
      NATS_PASSWORD: ${%[6]s}
    # Longer than SHUTDOWN_TIMEOUT (20s): let in-flight messages finish before SIGKILL.
    stop_grace_period: 25s
    healthcheck:
      test: ["CMD", "/app/%[1]s", "healthcheck"]
      interval: 5s
      timeout: 4s
      retries: 12
      start_period: 20s
    depends_on:
      postgres:
        condition: service_healthy
      nats:
        condition: service_healthy
      otel-collector:
        condition: service_healthy
      loki:
        condition: service_healthy`, n, svc.Port, svc.DBRole(), svc.DBPasswordVar(), svc.NATSUser(), svc.NATSPasswordVar())
	out := insertAfterBlock(src, start, block)
	keys, err := yamlKeys(out, "services")
	if err != nil || !slices.Contains(keys, n) {
		return nil, fmt.Errorf("%s: adding service %s failed (%v)", ComposeFile, n, err)
	}
	return out, nil
}

// editPrometheus adds the scrape job of the service after the last listed service's.
func (sc *Scaffold) editPrometheus(existing []services.Service, svc services.Service) error {
	src, err := sc.read(PrometheusFile)
	if err != nil {
		return err
	}
	jobs, err := yamlChild(src, "scrape_configs")
	if err != nil || jobs.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s: no scrape_configs list (%v)", PrometheusFile, err)
	}
	start := -1
	for _, job := range jobs.Content {
		for i := 0; i+1 < len(job.Content); i += 2 {
			name := job.Content[i+1].Value
			if job.Content[i].Value == "job_name" && slices.ContainsFunc(existing, func(s services.Service) bool { return s.Name == name }) {
				start = job.Line - 1
			}
			if job.Content[i].Value == "job_name" && name == svc.Name {
				return refuse("%s already has a scrape job %s: choose another NAME", PrometheusFile, svc.Name)
			}
		}
	}
	if start < 0 {
		return fmt.Errorf("%s: no scrape job of a listed service", PrometheusFile)
	}
	block := fmt.Sprintf("\n  - job_name: %s\n    static_configs:\n      - targets: [\"%s:%d\"]", svc.Name, svc.Name, svc.Port)
	out := insertAfterBlock(src, start, block)
	if _, err := yamlChild(out, "scrape_configs"); err != nil {
		return fmt.Errorf("%s: adding job %s failed: %v", PrometheusFile, svc.Name, err)
	}
	sc.changed = append(sc.changed, fileChange{path: PrometheusFile, data: out,
		what: fmt.Sprintf("scrape job %s (%s:%d), so its dashboard row and alert have data", svc.Name, svc.Name, svc.Port)})
	return nil
}

// editRunbookIndex adds the service's alert to the table of docs/runbooks/README.md.
func (sc *Scaffold) editRunbookIndex() error {
	src, err := sc.read(RunbookIndex)
	if err != nil {
		return err
	}
	d := sc.data
	row := fmt.Sprintf("| [%[1]s](%[1]s.md) | critical | no instance of %[2]s answers its scrape (or it is not scraped), for 2m | Consumers → *%[3]s* |",
		d.AlertName, d.Name, d.Panel)
	lines := strings.Split(string(src), "\n")
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "| [Loudly") {
			last = i
		}
	}
	if last < 0 {
		return fmt.Errorf("%s: no table of alerts to add %s to", RunbookIndex, d.AlertName)
	}
	lines = slices.Insert(lines, last+1, row)
	sc.changed = append(sc.changed, fileChange{path: RunbookIndex, data: []byte(strings.Join(lines, "\n")), what: d.AlertName + " in the runbook index"})
	return nil
}

// Write creates the new files and then changes the existing ones. Everything was computed
// (and the edits checked) before, so a failure here is the file system's.
func (sc *Scaffold) Write() error {
	for _, f := range sc.created {
		p := filepath.Join(sc.root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return err
		}
	}
	for _, f := range sc.changed {
		p := filepath.Join(sc.root, filepath.FromSlash(f.path))
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, info.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// Report prints what was written and what to do next.
func (sc *Scaffold) Report(w io.Writer) {
	d := sc.data
	fmt.Fprintf(w, "Scaffolded the %s service: durable consumer %q on stream %s, filter %s", d.Name, d.Name, d.Stream, d.Consumes)
	if d.Publishes != "" {
		fmt.Fprintf(w, "; publishes %s (stream %s) through %s.outbox", d.Publishes, d.PublishStream, d.Schema)
	}
	fmt.Fprintf(w, "; HTTP port %d; PostgreSQL schema %s.\n\nCreated:\n", d.Port, d.Schema)
	list := func(files []fileChange) {
		width := 0
		for _, f := range files {
			width = max(width, len(f.path))
		}
		for _, f := range files {
			fmt.Fprintf(w, "  %-*s  %s\n", width, f.path, f.what)
		}
	}
	list(sc.created)
	fmt.Fprintln(w, "\nChanged:")
	list(sc.changed)
	for _, n := range sc.notes {
		fmt.Fprintf(w, "\nNote: %s\n", n)
	}
	handle := path.Join("services", d.Name, d.Name, "handle.go")
	fmt.Fprintf(w, `
Next steps:
  1. go generate ./dashboards/... ./alerts/...
     renders its row on the consumer dashboard and its alert, %[1]s.
  2. go test ./services/%[2]s/...
     passes as scaffolded: every event is rejected as not_implemented, recorded and acked.
  3. go test ./services/ ./dashboards/... ./alerts/... ./deploy/...
     checks the list, the generated files, the compose service and the scrape job.
  4. Write the logic in %[3]s (and its test), and complete
     docs/runbooks/%[1]s.md.
The Dockerfile builds every program under services/: docker compose up runs it too.
`, d.AlertName, d.Name, handle)
}

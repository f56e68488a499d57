package scaffold

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"loudly/services/events"

	"golang.org/x/tools/go/ast/astutil"
)

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

	// Handlers are the event types the consumer receives; the first one is what the
	// generated tests publish. Routes are the same types by payload type: one typed batch
	// handler each.
	Handlers []eventType
	Routes   []routeData
	// OwnTypes are the event types the service declares in its own package (events.go): one
	// it consumes that no other package declares, one it publishes that none does. OwnStream
	// is the stream it declares for the one it consumes when no stream holds its subject.
	OwnTypes  []ownEvent
	OwnStream *streamDecl
	// Pub is the event type it publishes, nil when it publishes nothing.
	Pub *eventType
	// StreamsExpr is the Go expression of Spec.Streams: the lists of streams it ensures.
	StreamsExpr string
	// Imports are the packages of the event types and stream lists it uses besides its own
	// (services/events, another scaffolded service's); each file keeps those it uses.
	Imports []string
}

// routeData is one typed batch handler: the event types of one payload type.
type routeData struct {
	Payload string   // the payload type, a Go expression
	Events  []string // the *envelope.Type variables, Go expressions
	Types   string   // the event types' names, for the comment
	Method  string
}

// ownEvent is an event type a scaffolded service declares itself.
type ownEvent struct {
	Type      string // its name, the envelope's "type": the subject
	Go        string // its Go name: PaymentsRequested
	Subject   string
	Key       string // a sample key, a reference that is no UUID: pay-0001
	Published bool   // the service publishes it (else it consumes it)
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
		if strings.HasSuffix(p, "/events.go.tmpl") && len(d.OwnTypes) == 0 {
			return nil // its event types are declared elsewhere
		}
		if dir, _ := path.Split(rel); dir == "pkg/migrations/" {
			rel = "pkg/migrations/00001_" + d.Name + ".sql"
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

// renderTemplate renders one template. Go source comes out with the imports it does not
// use removed (a template imports what any service may need) and gofmt'ed.
func renderTemplate(name string, d serviceData) ([]byte, error) {
	t, err := template.New(path.Base(name)).Funcs(template.FuncMap{"join": strings.Join}).ParseFS(scaffoldTemplates, name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(name, ".go.tmpl") {
		return b.Bytes(), nil
	}
	src, err := pruneImports(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%s renders invalid Go: %w", name, err)
	}
	return src, nil
}

// pruneImports removes the imports src does not use and formats it. A package's name is
// taken from its path (packageName), as it is for every package a template imports.
func pruneImports(src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	var unused [][2]string // name (empty: the path's), path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := packageName(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name != "_" && name != "." && !used[name] {
			unused = append(unused, [2]string{nameOf(imp), p})
		}
	}
	for _, u := range unused {
		astutil.DeleteNamedImport(fset, f, u[0], u[1])
	}
	var b bytes.Buffer
	if err := format.Node(&b, fset, f); err != nil {
		return nil, err
	}
	return format.Source(b.Bytes())
}

// packageName is the name of the package at importPath as Go programs spell it: the last
// element, without a major version (pgx/v5 is pgx, yaml.v3 is yaml) or a ".go" (nats.go is
// nats).
func packageName(importPath string) string {
	dir, name := path.Split(importPath)
	if majorVersion.MatchString(name) {
		name = path.Base(dir)
	}
	name = dottedVersion.ReplaceAllString(name, "")
	return strings.TrimSuffix(name, ".go")
}

var (
	majorVersion  = regexp.MustCompile(`^v[0-9]+$`)
	dottedVersion = regexp.MustCompile(`\.v[0-9]+$`)
)

func nameOf(imp *ast.ImportSpec) string {
	if imp.Name == nil {
		return ""
	}
	return imp.Name.Name
}

// purpose is what a generated file is for, as the report prints it (docs/template.md says
// more).
func filePurpose(rel string) string {
	_, file, _ := strings.Cut(rel, "/")
	switch {
	case rel == "main.go":
		return "the program: lifecycle.Main wiring only (signals, config, telemetry, run, shutdown)"
	case file == "config.go":
		return "Config and ConfigFromEnv: the variables every service reads (service.ConfigFromEnv), DRILLS, and its own"
	case file == "service.go":
		return "New: the service base (pkg/service) and its wiring: the batch consumer, the outbox, the drills (one line)"
	case file == "events.go":
		return "its own event types (payload, validation, registration), and the stream of one no stream held"
	case file == "handle.go":
		return "the typed batch handlers: one result per event, from one transaction (store.apply)"
	case file == "store.go":
		return "its PostgreSQL state: apply claims each batch's events (pkg/idempotency) and records them against their entities"
	case strings.HasPrefix(file, "migrations/"):
		return "its tables (goose): entities, the scaffold's stand-in for the business state"
	case file == "service_test.go":
		return "the service against real NATS and PostgreSQL: one batch with every outcome, each recorded; health; config"
	case file == "drain_test.go":
		return "BenchmarkDrain: a backlog drained in batches vs one event a transaction"
	}
	return ""
}

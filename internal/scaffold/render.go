package scaffold

import (
	"bytes"
	"fmt"
	"go/format"
	"io/fs"
	"path/filepath"
	"strings"
	"text/template"

	"loudly/services/events"
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

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
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"loudly/services"
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

// chartMarker is the line of the chart's values above which the scaffold adds a service.
const chartMarker = "# (loudly new service adds a service above this line)"

// The repository files the scaffold reads and edits, relative to the root.
const (
	ServicesFile    = "services/services.go"
	StreamsFile     = "services/events/streams.go"
	ComposeFile     = "deploy/compose/docker-compose.yml"
	PrometheusFile  = "deploy/compose/prometheus/prometheus.yml"
	RunbookIndex    = "docs/runbooks/README.md"
	ChartValuesFile = "deploy/kubernetes/values.yaml"
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

	// lists are the stream lists the service ensures at start-up (Spec.Streams: Go
	// expressions such as events.Streams), and newShared the stream the scaffold adds to
	// services/events for what it publishes, if it adds one.
	lists     []string
	newShared string
}

type fileChange struct {
	path, what string
	data       []byte
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

	pkgs, err := servicePackages(root)
	if err != nil {
		return nil, err
	}
	streams, err := parseStreams(root, module, pkgs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", StreamsFile, err)
	}
	parsed := slices.Clone(streams) // the streams as they are
	known := append(sampleTypes(module), declaredTypes(pkgs, module)...)
	sc.data = serviceData{
		Module: module, Name: spec.Name, Camel: svc.CamelName(), Port: svc.Port, Schema: svc.Schema,
		Consumes: spec.Consumes, AlertName: alert, Panel: spec.Name + ": instances up",
		Expr: fmt.Sprintf(`(sum by (job) (up{job=%[1]q}) or absent(up{job=%[1]q}) - 1) < 1`, spec.Name),
	}
	if err := sc.planConsumes(spec, streams, known); err != nil {
		return nil, err
	}
	if sc.data.OwnStream != nil {
		streams = append(streams, *sc.data.OwnStream)
	}
	if spec.Publishes != "" {
		if err := sc.planPublishes(spec, streams, known); err != nil {
			return nil, err
		}
	}
	sc.data.StreamsExpr = sc.lists[0]
	if len(sc.lists) > 1 {
		sc.data.StreamsExpr = "slices.Concat(" + strings.Join(sc.lists, ", ") + ")"
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
	if err := sc.editCredentials(compose, svc, parsed); err != nil {
		return nil, err
	}
	if err := sc.editPrometheus(existing, svc); err != nil {
		return nil, err
	}
	if err := sc.editRunbookIndex(); err != nil {
		return nil, err
	}
	if err := sc.editChart(svc); err != nil {
		return nil, err
	}
	return sc, nil
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

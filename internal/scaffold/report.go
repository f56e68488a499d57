package scaffold

import (
	"fmt"
	"io"
	"path"
)

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
  1. go generate ./dashboards/... ./alerts/... ./deploy/kubernetes/...
     renders its row on the consumer dashboard and its alert, %[1]s, and copies
     them and its NATS user into the Kubernetes chart.
  2. go test ./services/%[2]s/...
     passes as scaffolded: a batch with every outcome (applied, duplicate, invalid, retry),
     each recorded; go test -run '^$' -bench BenchmarkDrain ./services/%[2]s/... measures
     batches against one event a transaction.
  3. go test ./services/ ./dashboards/... ./alerts/... ./deploy/...
     checks the list, the generated files, the compose service, the scrape job and the chart.
  4. Write the logic in %[3]s and store.go (and their tests): the scaffold
     applies each event by recording it against its entity. Complete
     docs/runbooks/%[1]s.md. Drills: DRILLS=enabled, then
     loudly drill start db-outage -service %[2]s.
The Dockerfile builds every program under services/: docker compose up runs it too, and the
chart (deploy/kubernetes) deploys it.
`, d.AlertName, d.Name, handle)
}

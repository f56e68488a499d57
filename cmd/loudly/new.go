package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"loudly/internal/scaffold"
)

// The new group writes code into the repository it runs in. The command only parses its
// flags: internal/scaffold plans and writes the service (docs/template.md describes every
// file it writes).
var newCommands = []command{
	{name: "service", args: "NAME --consumes SUBJECT [--publishes SUBJECT] [-root DIR]",
		summary: "scaffold services/NAME, a consumer service wired like the others", runE: newService},
}

func runNew(ctx context.Context, c *cli, self command, args []string) error {
	return c.runGroup(ctx, group{
		name:     self.name,
		about:    "Scaffolds a new part of this repository. docs/template.md explains every file it writes.",
		commands: newCommands,
	}, args)
}

func newService(ctx context.Context, c *cli, self command, args []string) error {
	l := &leaf{fs: flag.NewFlagSet(self.name, flag.ContinueOnError), args: self.args, about: "Creates services/NAME: main.go (lifecycle.Main), package NAME on the service base pkg/service\n" +
		"as order and inventory are built: configuration from the environment, its own schema and record of\n" +
		"processed events, durable consumer NAME deciding batches (one transaction a batch, one outcome per\n" +
		"event), the outbox when it publishes, the drills in one line, health endpoints, graceful shutdown,\n" +
		"a test of one batch with every outcome against real NATS and PostgreSQL and a drain benchmark —\n" +
		"and adds the service to services/services.go, the compose demo, Prometheus's scrape jobs and the\n" +
		"runbooks. Its dashboard row and alert rule come from the next go generate.\n\n" +
		"NAME is a lower-case Go package name. SUBJECT of --consumes is a subject of a known event type\n" +
		"(services/events, or one another service declared; a wildcard covering some), or a new concrete\n" +
		"subject no stream holds: the service then declares its event type and a stream for it in its own\n" +
		"package. A --publishes subject with no known event type gets one in the service's package, and one\n" +
		"outside every stream gets a new stream in services/events/streams.go."}
	l.fs.SetOutput(io.Discard)
	l.fs.Usage = func() {}
	var spec scaffold.Spec
	l.fs.StringVar(&spec.Consumes, "consumes", "", "the `SUBJECT` its durable consumer reads (a filter: orders.placed, inventory.>); required")
	l.fs.StringVar(&spec.Publishes, "publishes", "", "the `SUBJECT` it publishes through a transactional outbox (optional)")
	root := l.fs.String("root", "", "the repository `DIR` to write into (default: the module containing the current directory)")
	pos, err := l.parseArgs(args, 1, 1)
	if err != nil {
		return err
	}
	spec.Name = pos[0]
	if spec.Consumes == "" {
		return l.refusef("--consumes is required: every service consumes a subject")
	}
	dir := *root
	if dir == "" {
		if dir, err = scaffold.ModuleRoot(); err != nil {
			return err
		}
	}
	sc, err := scaffold.Plan(dir, spec)
	var refused *scaffold.Refusal
	switch {
	case errors.As(err, &refused):
		return l.refusef("%v", err)
	case err != nil:
		return err
	}
	if err := sc.Write(); err != nil {
		return err
	}
	sc.Report(c.stdout)
	return nil
}

package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"loudly/internal/demo"
	"loudly/loadtest/load"
)

func runDemo(ctx context.Context, c *cli, self command, args []string) error {
	l := &leaf{fs: flag.NewFlagSet(self.name, flag.ContinueOnError), args: self.args, about: "Runs the whole pipeline on this machine with nothing but Go: an embedded JetStream server,\n" +
		"PostgreSQL from the local binaries (or $DATABASE_URL), the order and inventory services as\n" +
		"their mains run them, the load generator with a trickle of poison, and Prometheus with the\n" +
		"compose demo's alert rules when a prometheus binary is on PATH or built by `make tools`.\n" +
		"A live view shows throughput, the reconciler, consumer lag, the active drill and the alerts\n" +
		"(plain lines when stdout is not a terminal). The other loudly commands (drill, gameday, dlq,\n" +
		"trace) find the running demo by themselves. Ctrl-C stops the load, verifies that every\n" +
		"accepted order reached a final status and every poison event was dead-lettered, stops\n" +
		"everything, and prints the load generator's summary line (lost=0 when nothing was lost).\n\n" +
		"The data directory (-dir, or $LOUDLY_DEMO_DIR, default ./" + demo.DefaultDir + ") keeps the streams and the\n" +
		"database across runs; -fresh starts over. Services' settings in the environment reach them\n" +
		"(e.g. CONSUMER_BATCH_SIZE=1, OTEL_EXPORTER_OTLP_ENDPOINT)."}
	l.fs.SetOutput(io.Discard) // parseArgs reports errors and usage itself
	l.fs.Usage = func() {}
	dir := l.fs.String("dir", envOr(c, demo.EnvDir, demo.DefaultDir), "data `directory` ($"+demo.EnvDir+")")
	fresh := l.fs.Bool("fresh", false, "remove what an earlier demo left in the data directory first")
	rate := l.fs.Float64("rate", load.DemoRate, "orders per second")
	poison := l.fs.Float64("poison", load.DemoPoison, "poison events per order, in [0,1]")
	refresh := l.fs.Duration("refresh", 0, "how often the view refreshes (default 1s; plain lines 5s)")
	plain := l.fs.Bool("plain", false, "plain lines even on a terminal")
	freePorts := l.fs.Bool("free-ports", false, "free ports for everything, rather than trying 4222, 8080, 8081 and 9090 first")
	verify := l.fs.Duration("verify-timeout", time.Minute, "how long the stop waits for accepted orders to become final, `D`")
	prom := l.fs.String("prometheus", "", "the prometheus `binary` (default: on PATH, else the one `make tools` built)")
	if _, err := l.parseArgs(args, 0, 0); err != nil {
		return err
	}
	switch {
	case !(*rate > 0) || *rate > 10000:
		return l.usagef("-rate must be between 0 and 10000")
	case !(*poison >= 0 && *poison <= 1):
		return l.usagef("-poison must be between 0 and 1")
	case *verify <= 0:
		return l.usagef("-verify-timeout must be positive")
	case *refresh < 0:
		return l.usagef("-refresh must not be negative")
	}
	f, isFile := c.stdout.(*os.File)
	tty := isFile && term.IsTerminal(int(f.Fd())) && !*plain
	if *refresh == 0 {
		*refresh = 5 * time.Second
		if tty {
			*refresh = time.Second
		}
	}
	return demo.Run(ctx, demo.Options{
		Dir: *dir, Fresh: *fresh, Rate: *rate, Poison: *poison, Refresh: *refresh, Terminal: tty,
		Prometheus: *prom, FreePorts: *freePorts, Verify: *verify, Version: "demo", Getenv: c.getenv, Stdout: c.stdout, Stderr: c.stderr,
	})
}

// running is the demo running on this machine, if any (its state file, in
// $LOUDLY_DEMO_DIR or the nearest ./.loudly-demo): the commands' defaults for NATS,
// Prometheus and the services' URLs when neither a flag nor a variable gives them.
func (c *cli) running() (demo.State, bool) { return demo.Running(c.getenv) }

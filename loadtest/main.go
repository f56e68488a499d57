// Command loadtest drives Loudly at a steady rate and, with -verify, proves that nothing
// was lost on the way: every order the API accepted reached a final status, and every
// poison event published straight to the broker ended up in the dead letters.
//
//	go run ./loadtest -url http://127.0.0.1:8080 -nats nats://127.0.0.1:4222 \
//	    -rate 50 -duration 30s -poison 0.02 -verify
//
// Its last line on stdout is always one machine-readable summary:
//
//	accepted=… confirmed=… rejected=… failed=… dead_lettered=… lost=… p50_ms=… p99_ms=… orders_per_s=… [more fields]
//
// The exit code is 0 when the run was clean, 1 when verification found something lost
// (or nothing could be sent at all), and 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"loudly/loadtest/load"
	"loudly/pkg/lifecycle"
)

// Exit codes.
const (
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	// Signals first: an interrupted run still prints what it saw.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		os.Exit(lifecycle.Healthcheck(os.Getenv("LOADTEST_STATUS_ADDR"), defaultStatusAddr, os.Stderr))
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadtest: %v\n", err)
		stop()
		os.Exit(exitUsage)
	}
	if cfg.Forever {
		forever(ctx, cfg.Config, cfg.StatusAddr, os.Stdout, os.Stderr)
		return
	}
	if _, err := run(ctx, cfg.Config, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "loadtest: %v\n", err)
		stop()
		os.Exit(exitFailure)
	}
}

// config is a run of the engine, as the tests build it.
type config = load.Config

// flags is what the command line asks for: a run, and whether to repeat it.
type flags struct {
	load.Config
	Forever    bool   // repeat rounds of Duration until interrupted (the compose demo's load)
	StatusAddr string // with Forever: where /readyz answers while rounds run
}

// run is one run of the engine (load.Run).
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (load.Summary, error) {
	return load.Run(ctx, cfg, stdout, stderr)
}

// parseFlags reads and validates the flags; every problem is reported at once.
func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var c flags
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "order service base URL")
	fs.StringVar(&c.NATSURL, "nats", "nats://127.0.0.1:4222", "NATS URL (used for poison events and the dead-letter check)")
	fs.Float64Var(&c.Rate, "rate", 50, "orders per second (> 0)")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long to send orders")
	fs.Float64Var(&c.Poison, "poison", 0, "poison events per order sent, in [0,1] (0.02 = 2 per 100 orders)")
	fs.BoolVar(&c.Verify, "verify", false, "wait until every accepted order is final and every poison event is dead-lettered; exit 1 otherwise")
	fs.DurationVar(&c.Timeout, "timeout", 2*time.Minute, "how long -verify waits after sending")
	fs.IntVar(&c.Concurrency, "concurrency", 64, "HTTP requests in flight at most")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the order mix (0 = random)")
	fs.DurationVar(&c.Warmup, "warmup", 0, "the start of -duration whose orders are verified but kept out of p50/p99 (reported as warmup_p99_ms)")
	fs.BoolVar(&c.Forever, "forever", false, "repeat rounds of -duration until interrupted, each with its own summary line")
	fs.StringVar(&c.StatusAddr, "status-addr", defaultStatusAddr, "with -forever: address of the /readyz endpoint ('loadtest healthcheck' asks it)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}

	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if fs.NArg() > 0 {
		bad("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("-url %q: want an http:// or https:// URL with a host", c.URL)
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		bad("-rate %v: must be greater than 0", c.Rate)
	}
	if c.Duration <= 0 {
		bad("-duration %v: must be greater than 0", c.Duration)
	}
	if c.Warmup < 0 || (c.Duration > 0 && c.Warmup >= c.Duration) {
		bad("-warmup %v: must be at least 0 and shorter than -duration", c.Warmup)
	}
	if len(problems) == 0 && c.Total() < 1 {
		bad("-rate %v for -duration %v schedules no order; raise either", c.Rate, c.Duration)
	}
	if !(c.Poison >= 0 && c.Poison <= 1) {
		bad("-poison %v: must be between 0 and 1", c.Poison)
	}
	if c.Poison > 0 {
		if u, err := url.Parse(c.NATSURL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" {
			bad("-nats %q: want a nats:// or tls:// URL with a host", c.NATSURL)
		}
	}
	if c.Timeout <= 0 {
		bad("-timeout %v: must be greater than 0", c.Timeout)
	}
	if c.Concurrency < 1 || c.Concurrency > 10000 {
		bad("-concurrency %d: must be between 1 and 10000", c.Concurrency)
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("bad flags:\n  %s", strings.Join(problems, "\n  "))
	}
	return c, nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"loudly/internal/gameday"
	"loudly/pkg/env"
	"loudly/pkg/faults"
	"loudly/services/drill"
)

const defaultPrometheus = "http://127.0.0.1:9090"

// drillGameday wires package gameday to the fault bucket, Prometheus and the clock.
func drillGameday(ctx context.Context, c *cli, self command, args []string) error {
	l := c.newLeaf(self, "Starts the catalog's drills one after another, in a random order that -seed repeats, each\n"+
		"for -each (with -for, so it ends by itself even if this command dies), then waits -recover.\n"+
		"Meanwhile it polls Prometheus's alerts and prints a scorecard: per drill, which expected\n"+
		"alert fired and how long after the start, whether an alert that must stay quiet fired, and\n"+
		"the orders still unsettled after the recovery pause. Ctrl-C stops the current fault and\n"+
		"prints the scorecard so far.\n\n"+
		"Exit 0 when every drill was detected and no quiet alert fired, 1 otherwise (or when\n"+
		"interrupted), 2 for a bad command line.")
	seed := l.fs.Uint64("seed", 0, "`N` seeds the drill order; the same seed gives the same game (default: random, printed)")
	duration := l.fs.Duration("duration", 0, "length of the game day, `D` (e.g. 90m); required")
	each := l.fs.Duration("each", 8*time.Minute, "how long each drill's fault stays on, `D` (long enough for the production alerts' hold times)")
	recovery := l.fs.Duration("recover", 4*time.Minute, "pause after each drill before the next, `D`, for recovery and the loss check")
	promFlag := l.fs.String("prometheus", "", "Prometheus base `URL` (default: $PROMETHEUS_URL, the running demo's, or "+defaultPrometheus+")")
	asJSON := l.fs.Bool("json", false, "print the scorecard as one JSON document")
	if _, err := l.parseArgs(args, 0, 0); err != nil {
		return err
	}
	seedSet := false
	l.fs.Visit(func(f *flag.Flag) {
		if f.Name == "seed" {
			seedSet = true
		}
	})
	switch {
	case *duration <= 0:
		return l.usagef("-duration is required and must be positive")
	case *each <= 0:
		return l.usagef("-each must be positive")
	case *recovery < 0:
		return l.usagef("-recover must not be negative")
	case *duration < *each+*recovery:
		return l.usagef("-duration %s does not fit one drill (-each %s + -recover %s)", *duration, *each, *recovery)
	}
	promURL, err := prometheusURL(c, *promFlag)
	if err != nil {
		return l.badConfig(err)
	}
	if !seedSet {
		*seed = rand.Uint64()
	}
	plan := gameday.NewSchedule(*seed, *duration, *each, *recovery, drill.Catalog)

	natsURL, err := l.natsURL(c)
	if err != nil {
		return err
	}
	// Unlike the one-shot commands, a game day lasts hours: ride out a broker blip rather
	// than abort, but fail at once when the broker is not there to begin with.
	auth, err := l.natsAuth(c)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(natsURL, append(auth, nats.Name("loudly-gameday"), nats.Timeout(5*time.Second),
		nats.MaxReconnects(120), nats.ReconnectWait(time.Second))...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", redact(natsURL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := l.checkLoudly(ctx, js, natsURL); err != nil {
		return err
	}
	client, err := promapi.NewClient(promapi.Config{Address: promURL, Client: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		return l.badConfig(err)
	}
	prom := promv1.NewAPI(client)
	if _, err := prom.Alerts(ctx); err != nil {
		return fmt.Errorf("prometheus at %s: %w", redact(promURL), err)
	}
	if active, err := faults.List(ctx, js); err != nil {
		return err
	} else if len(active) > 0 {
		var names []string
		for _, f := range active {
			names = append(names, f.Name)
		}
		fmt.Fprintf(c.stderr, "warning: faults already active, not part of the game: %s\n", strings.Join(names, ", "))
	}
	g := &gameday.Game{Faults: gameday.Bucket(js), Prometheus: prom, Progress: c.stderr}
	card := g.Run(ctx, plan)
	if *asJSON {
		if err := c.writeJSON(card); err != nil {
			return err
		}
	} else {
		card.Print(c.stdout)
	}
	switch {
	case card.Error != "":
		return errors.New(card.Error)
	case card.Interrupted:
		return errors.New("interrupted")
	case !card.Passed:
		return errors.New("not every drill was detected, or an alert that must stay quiet fired: see the scorecard")
	}
	return nil
}

// prometheusURL is -prometheus if given, else PROMETHEUS_URL, else the default, checked
// like every other URL the tools take.
func prometheusURL(c *cli, flagV string) (string, error) {
	name, v := "PROMETHEUS_URL", flagV
	if v != "" {
		name = "-prometheus"
	} else {
		v = c.getenv("PROMETHEUS_URL")
	}
	if s, ok := c.running(); ok && v == "" && s.PrometheusURL != "" {
		v, name = s.PrometheusURL, "the running demo's Prometheus URL"
	}
	r := env.New(func(string) string { return v })
	u := r.URL(name, defaultPrometheus, "http", "https")
	return u, r.Err()
}

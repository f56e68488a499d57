// Package demo runs the whole pipeline on one machine with nothing but Go: an embedded
// JetStream server, a PostgreSQL from the machine's binaries (or DATABASE_URL), both
// services exactly as their mains run them (lifecycle.Run with their Programs), the load
// generator at a demo rate with a trickle of poison, and Prometheus with the compose
// demo's rules when a binary is found; a live view in the terminal, and on Ctrl-C a
// graceful stop that verifies every accepted order and prints the load generator's
// summary line. `loudly demo` parses its flags and calls Run.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"loudly/internal/localpg"
	"loudly/loadtest/load"
	"loudly/pkg/lifecycle"
	"loudly/services/inventory/inventory"
	"loudly/services/order/order"
)

// Options is how a demo runs.
type Options struct {
	Dir        string        // data directory: the broker's streams, PostgreSQL, Prometheus, logs, the state file
	Fresh      bool          // remove what an earlier demo left in Dir first
	Rate       float64       // orders per second
	Poison     float64       // poison events per order
	Refresh    time.Duration // how often the view refreshes (plain lines: how often one is printed)
	Terminal   bool          // stdout is a terminal: the live view; otherwise plain lines
	Prometheus string        // the prometheus binary; empty: PATH, then `make tools`'s
	FreePorts  bool          // free ports for everything, rather than the compose demo's first
	Verify     time.Duration // how long the stop waits for accepted orders to become final
	Version    string        // the services' version

	Getenv         func(string) string // the environment the services start from
	Stdout, Stderr io.Writer
}

// Ports the demo tries first, those of the compose demo, so URLs in the docs work; a
// taken one is replaced by a free one.
const (
	natsPort       = 4222
	orderPort      = 8080
	inventoryPort  = 8081
	prometheusPort = 9090
)

// settings are the services' variables the demo sets unless the environment does: the
// compose demo's (deploy/compose/docker-compose.yml), so drills and alerts behave as
// their guides say.
var settings = map[string]map[string]string{
	"order":     {"SETTLEMENT_DEADLINE": "1m", "RECONCILE_INTERVAL": "10s"},
	"inventory": {"CONSUMER_ACK_WAIT": "10s", "CONSUMER_CONCURRENCY": "16"},
}

// Run runs the demo until ctx ends or the view is quit, then stops it and returns
// once every process it started has exited. A failure to start is an error; the run's
// own outcome (something lost) is in the summary line, and an error too.
func Run(ctx context.Context, o Options) (err error) {
	if o.Dir == "" {
		o.Dir = DefaultDir
	}
	if o.Verify <= 0 {
		o.Verify = time.Minute
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	if s, ok := readState(dir); ok {
		return fmt.Errorf("a demo is already running in %s (pid %d); stop it first, or give another directory", dir, s.Pid)
	}
	if o.Fresh {
		if err := wipe(dir); err != nil {
			return err
		}
	}
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return err
	}
	d := &demo{o: o, dir: dir, logDir: logDir, failed: make(chan error, 2)}
	defer d.closeFiles()
	defer d.closeAll()
	// A reader of stdout or stderr that goes away (`make demo | tee log`, then Ctrl-C,
	// which ends tee first) must not kill the demo with SIGPIPE halfway through its
	// verification: with the signal taken here, a write to the closed pipe fails instead,
	// and the demo carries on to its summary, which the data directory's log keeps.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	defer signal.Stop(pipe)
	demoLog, err := d.logFile(logName)
	if err != nil {
		return err
	}
	d.log = demoLog
	say := func(format string, args ...any) {
		line := fmt.Sprintf("demo: "+format+"\n", args...)
		fmt.Fprint(o.Stderr, line)
		fmt.Fprint(demoLog, line)
	}

	// PostgreSQL.
	dsn := o.Getenv("DATABASE_URL")
	if dsn == "" {
		say("starting PostgreSQL from the local binaries in %s", filepath.Join(dir, "postgres"))
		pg, err := localpg.Open(filepath.Join(dir, "postgres"), 0)
		if err != nil {
			return fmt.Errorf("PostgreSQL: %w\n(set DATABASE_URL to use a running server instead)", err)
		}
		d.closers = append(d.closers, func() { _ = pg.Stop() })
		dsn = pg.AdminDSN()
		say("PostgreSQL at %s (psql it for the drill guides' queries)", dsn)
	} else {
		say("using DATABASE_URL")
	}

	// NATS.
	natsLog, err := d.logFile("nats.log")
	if err != nil {
		return err
	}
	port := natsPort
	if o.FreePorts {
		port = server.RANDOM_PORT
	}
	ns, natsURL, err := startNATS(filepath.Join(dir, "nats"), port, natsLog)
	if err != nil {
		return err
	}
	d.closers = append(d.closers, func() { ns.Shutdown(); ns.WaitForShutdown() })
	say("embedded NATS with JetStream on %s, streams in %s", natsURL, filepath.Join(dir, "nats"))

	// The services, inventory first (it owns the stock the orders reserve).
	svcCtx, stopServices := context.WithCancel(context.Background())
	d.closers = append(d.closers, func() { stopServices(); d.waitServices(say) }) // before the broker and the database
	invAddr, orderAddr := d.pickAddr(inventoryPort), d.pickAddr(orderPort)
	if err := startService(svcCtx, d, inventory.Program(o.Version), invAddr, dsn, natsURL); err != nil {
		return err
	}
	if err := startService(svcCtx, d, order.Program(o.Version), orderAddr, dsn, natsURL); err != nil {
		return err
	}
	state := State{Pid: os.Getpid(), NATSURL: natsURL, OrderURL: "http://" + orderAddr, InventoryURL: "http://" + invAddr, DatabaseURL: dsn, LogDir: logDir}
	say("order service on %s, inventory service on %s (logs in %s)", state.OrderURL, state.InventoryURL, logDir)

	// Prometheus, when there is one.
	var prom promv1.API
	note := ""
	if bin := findPrometheus(o.Prometheus, o.Getenv); bin == "" {
		note = "no prometheus binary on PATH or in the tools cache; `make tools` builds one (then run the demo again)"
		say("running without alerts: %s", note)
	} else {
		plog, err := d.logFile("prometheus.log")
		if err != nil {
			return err
		}
		promAddr := d.pickAddr(prometheusPort)
		p, err := startPrometheus(bin, filepath.Join(dir, "prometheus"), promAddr,
			map[string]string{"order": orderAddr, "inventory": invAddr, "prometheus": promAddr}, plog)
		if err != nil {
			return err
		}
		d.closers = append(d.closers, p.stop)
		client, err := promapi.NewClient(promapi.Config{Address: p.url})
		if err != nil {
			return err
		}
		prom = promv1.NewAPI(client)
		state.PrometheusURL = p.url
		say("Prometheus %s with the compose demo's rules: %s/alerts", bin, p.url)
	}

	// The state file tells the loudly commands where everything is.
	if err := writeState(dir, state); err != nil {
		return err
	}
	d.closers = append(d.closers, func() { os.Remove(filepath.Join(dir, stateFile)) })

	// The view's own connection to the broker, for the fault bucket.
	nc, err := nats.Connect(natsURL, nats.Name("loudly-demo-view"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}

	// The load, until the demo stops.
	loadLog, err := d.logFile("loadtest.log")
	if err != nil {
		return err
	}
	stopSending := make(chan struct{})
	loadCtx, abandonLoad := context.WithCancel(context.Background())
	defer abandonLoad()
	var report bytes.Buffer
	type result struct {
		s   load.Summary
		err error
	}
	loaded := make(chan result, 1)
	go func() {
		s, err := load.Run(loadCtx, load.Config{
			URL: state.OrderURL, NATSURL: natsURL, Rate: o.Rate, Poison: o.Poison, Stop: stopSending,
			Verify: true, Timeout: o.Verify, Concurrency: 32,
		}, &report, loadLog)
		loaded <- result{s, err}
	}()
	say("load: %g orders/s, %g poison events per order; drills: loudly drill start silent-skip", o.Rate, o.Poison)

	// The view, until Ctrl-C (or q in the terminal view), or a service or the load stops.
	runCtx, stopDemo := context.WithCancel(ctx)
	defer stopDemo()
	w := &watcher{client: &http.Client{Timeout: 2 * time.Second}, js: js, prom: prom,
		metricURLs: []string{state.OrderURL + "/metrics", state.InventoryURL + "/metrics"}}
	var early *result
	d.view(runCtx, w, state, note, stopDemo, func() bool {
		select {
		case r := <-loaded:
			early = &r
			return true
		case err := <-d.failed:
			say("%v", err)
			return true
		default:
			return false
		}
	})

	// The stop: no new orders, every accepted order verified final while the services
	// still run, then the services (in-flight messages settled), then the rest.
	// The first signal ended the demo gracefully (ctx, from the caller); one more
	// during the stop gives up waiting for the verification.
	force := make(chan os.Signal, 1)
	signal.Notify(force, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(force)
	close(stopSending)
	say("stopping: no new orders; verifying that every accepted order reached a final status (up to %s; Ctrl-C again to give up waiting)", o.Verify)
	var r result
	if early != nil {
		r = *early
	} else {
		select {
		case r = <-loaded:
		case <-force:
			abandonLoad()
			r = <-loaded
		}
	}
	stopServices()
	d.waitServices(say)
	var reasons []error
	if r.err != nil {
		reasons = append(reasons, fmt.Errorf("load: %w", r.err))
	}
	if err := d.failure(); err != nil {
		reasons = append(reasons, err)
	}
	reason := errors.Join(reasons...)
	d.closeAll() // Prometheus, NATS, PostgreSQL, the state file: nothing is said after the summary
	d.report(report.String(), reason)
	if reason != nil {
		return &Failed{Reason: reason}
	}
	return nil
}

// logName is the demo's own log in the data directory's logs/: what it said on stderr,
// and its ending (the load's breakdown, why it failed, the summary line).
const logName = "demo.log"

// Failed is a demo that ran and did not end well: something was lost, the verification
// was given up, or a service failed. Its reason is already printed, on the line before the
// summary line; the program exits 1 without saying more, so the summary stays last.
type Failed struct{ Reason error }

func (f *Failed) Error() string { return f.Reason.Error() }

// Reported says the error was printed already.
func (f *Failed) Reported() {}

// report prints the demo's ending: the load's breakdown, the reason it failed if it did,
// and the summary line last. It goes to stdout and to the data directory's log; when
// stdout is gone (a closed pipe), to stderr instead, so a terminal still shows it.
func (d *demo) report(out string, reason error) {
	out = strings.TrimRight(out, "\n")
	body, summary := "", out
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		body, summary = out[:i+1], out[i+1:]
	}
	var b strings.Builder
	b.WriteString(body)
	if reason != nil {
		for line := range strings.SplitSeq(reason.Error(), "\n") {
			b.WriteString("demo failed: " + line + "\n")
		}
	}
	b.WriteString(summary + "\n")
	text := b.String()
	if d.log != nil {
		fmt.Fprint(d.log, text)
	}
	if _, err := io.WriteString(d.o.Stdout, text); err != nil {
		fmt.Fprint(d.o.Stderr, text)
	}
}

// demo is what Run started, to stop in reverse order.
type demo struct {
	o           Options
	dir, logDir string
	closers     []func()
	files       []*os.File
	log         *os.File // logs/demo.log

	services sync.WaitGroup
	failed   chan error // a service that exited before the stop
	mu       sync.Mutex
	exits    []string // services that exited with an error
}

func (d *demo) logFile(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(d.logDir, name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err == nil {
		d.files = append(d.files, f)
	}
	return f, err
}

// closeAll stops what the demo started, in reverse order, once: the log files stay open
// until the end, for the summary.
func (d *demo) closeAll() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// closeFiles closes the log files.
func (d *demo) closeFiles() {
	for _, f := range d.files {
		f.Close()
	}
	d.files = nil
}

// startService runs a service program in-process exactly as its main runs it
// (lifecycle.Run), with the environment plus the demo's addresses and settings, its log
// in the demo's log directory, and waits until it is ready.
func startService[C any, S lifecycle.Service](ctx context.Context, d *demo, p lifecycle.Program[C, S], addr, dsn, natsURL string) error {
	logf, err := d.logFile(p.Name + ".log")
	if err != nil {
		return err
	}
	vars := map[string]string{
		"DATABASE_URL": dsn, "NATS_URL": natsURL, "HTTP_ADDR": addr,
		"DRILLS":                 "enabled", // the drills are what the demo is for
		"DEPLOYMENT_ENVIRONMENT": "demo",
		"OTEL_SERVICE_NAME":      "", // each service is called by its own name
		"PPROF_ADDR":             "", // one address cannot serve two services
	}
	getenv := func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		if v := d.o.Getenv(k); v != "" {
			return v
		}
		return settings[p.Name][k]
	}
	errs := &syncBuffer{}
	done := make(chan struct{})
	var code int
	d.services.Add(1)
	go func() {
		defer d.services.Done()
		code = lifecycle.Run(ctx, p, lifecycle.Process{Getenv: getenv, Stdout: logf, Stderr: io.MultiWriter(logf, errs)})
		close(done)
		if code != 0 {
			d.mu.Lock()
			d.exits = append(d.exits, fmt.Sprintf("%s exited %d: %s", p.Name, code, strings.TrimSpace(errs.String())))
			d.mu.Unlock()
		}
		if ctx.Err() == nil {
			d.failed <- fmt.Errorf("the %s service stopped by itself (exit %d); see %s", p.Name, code, logf.Name())
		}
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("the %s service did not start (exit %d): %s(log: %s)", p.Name, code, errs.String(), logf.Name())
		default:
		}
		if res, err := http.Get("http://" + addr + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s service is not ready on %s after 90s (log: %s)", p.Name, addr, logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitServices waits for the services to finish their shutdown: in-flight messages
// settled, connections closed.
func (d *demo) waitServices(say func(string, ...any)) {
	done := make(chan struct{})
	go func() { d.services.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		say("the services did not stop within a minute; leaving them")
		d.mu.Lock()
		d.exits = append(d.exits, "the services did not stop within a minute")
		d.mu.Unlock()
	}
}

// failure is the error of a service that did not exit cleanly.
func (d *demo) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.exits) == 0 {
		return nil
	}
	return errors.New(strings.Join(d.exits, "; "))
}

// syncBuffer is a buffer written from one goroutine and read from another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// view shows frames until ctx ends, or until stopped reports true (checked at each
// refresh); quitting the terminal view calls quit.
func (d *demo) view(ctx context.Context, w *watcher, where State, note string, quit func(), stopped func() bool) {
	started := time.Now()
	refresh := d.o.Refresh
	var prog *tea.Program
	var tuiDone chan struct{} // nil, so never ready, without the terminal view
	if d.o.Terminal {
		prog = newTUI(d.o.Stdout, quit)
		tuiDone = make(chan struct{})
		go func() {
			if _, err := prog.Run(); err != nil {
				fmt.Fprintf(d.o.Stderr, "demo: live view: %v\n", err)
			}
			close(tuiDone)
		}()
	}
	// Rates are over the last rateWindow at least (or since the previous plain line).
	const rateWindow = 5 * time.Second
	var history []snapshot
	tick := time.NewTicker(refresh)
	defer tick.Stop()
	for {
		snap := w.snapshot(ctx)
		history = append(history, snap)
		base := history[0]
		for len(history) > 1 && snap.at.Sub(history[1].at) >= rateWindow {
			history = history[1:]
			base = history[0]
		}
		f := frame{snap: snap, rates: rateBetween(base, snap), window: snap.at.Sub(base.at), started: started, where: where, note: note}
		if prog != nil {
			prog.Send(f)
		} else {
			fmt.Fprintln(d.o.Stdout, f.line())
		}
		if stopped() {
			quit()
		}
		select {
		case <-ctx.Done():
			if prog != nil {
				prog.Quit()
				<-tuiDone
			}
			return
		case <-tuiDone:
			quit() // the view ended (q, or it failed): so does the demo
			return
		case <-tick.C:
		}
	}
}

// pickAddr is 127.0.0.1:port when that port is free (and free ports were not asked
// for), else a free one.
func (d *demo) pickAddr(port int) string {
	if !d.o.FreePorts && free(port) {
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	p, err := localpg.FreePort()
	if err != nil {
		return fmt.Sprintf("127.0.0.1:%d", port) // and let the service say why it cannot listen
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// wipe removes an earlier demo's data directory, refusing one that holds anything a
// demo does not write there.
func wipe(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	known := map[string]bool{"nats": true, "postgres": true, "prometheus": true, "logs": true, stateFile: true, stateFile + ".tmp": true}
	for _, e := range entries {
		if !known[e.Name()] {
			return fmt.Errorf("-fresh: %s holds %s, which no demo wrote there; not removing it", dir, e.Name())
		}
	}
	return os.RemoveAll(dir)
}

// Command loudly is the operator's tool for a running Loudly: it reads and acts on the
// broker the services use, so an on-call engineer can see what was given up on and put it
// back, without knowing the JetStream API.
//
// Each command group lives in its own file (dlq.go, …) and registers itself in commands.
// A command only parses its command line and wires the package that does the work
// (internal/gameday, internal/ordertrace, pkg/deadletter, services/drill), the way
// x/tools' commands do. run is the whole program; main only hands it the process's
// arguments, streams and a context cancelled by Ctrl-C, so tests run exactly what a user
// runs, in-process.
//
// Commands return errors; run turns them into exit codes and messages in one place
// (exit): 0 success, 1 the command failed (broker unreachable, unknown letter, a redrive
// that did not complete), 2 the command line was wrong (a *usageError, shown with the
// usage).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/broker"
	"loudly/pkg/deadletter"
	"loudly/pkg/env"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	defaultNATS = "nats://127.0.0.1:4222"
)

// command is one entry of a dispatch table: a top-level command, or a subcommand of a
// group. args is its synopsis after the name, as the usages show it. runE receives the
// entry with name made full ("loudly dlq show"), and the arguments after the name; it
// returns nil on success, a *usageError for a command line that makes no sense, and any
// other error when the command failed.
type command struct {
	name    string
	args    string
	summary string
	runE    func(ctx context.Context, c *cli, self command, args []string) error
}

// commands is the top level. A new group (drill, trace, new) adds one line here and its
// own file.
var commands = []command{
	{name: "dlq", args: "<command>", summary: "list, inspect and redrive dead letters", runE: runDLQ},
	{name: "drill", args: "<command>", summary: "start and stop on-call drills (fault injection)", runE: runDrill},
	{name: "trace", args: "ORDER_ID [-json]", summary: "follow one order through every hop; exit 1 if it is stuck", runE: runTrace},
	{name: "new", args: "<command>", summary: "scaffold a new service wired like the others", runE: runNew},
	{name: "demo", args: "[-fresh] [-rate N] [-dir D]", summary: "run the pipeline, its load, alerts and drills on this machine (no Docker)", runE: runDemo},
}

// top is the program itself: the group every command line starts in.
var top = group{
	name:  "loudly",
	about: "loudly is the operator's tool for a running Loudly.",
	footer: "Commands that talk to NATS connect to $NATS_URL (default: the running `loudly demo`'s, else\n" +
		defaultNATS + "); their -nats flag overrides it. They authenticate with $NATS_USER and\n" +
		"$NATS_PASSWORD, $NATS_CREDS or $NATS_NKEY_SEED, as the services do.\n" +
		"Exit codes: 0 success, 1 the command failed, 2 bad command line.\n",
}

// cli is what every command writes to and reads its configuration from.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	defaultNATS    string // the server when nobody names one; "": defaultNATS
}

// run executes one command line (without the program name) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	g := top
	g.commands = commands
	return c.exit(c.runGroup(ctx, g, args))
}

// usageError is a command line that parsed but makes no sense, or a configuration that
// cannot be used: exit 2, with the message and (when usage is set) the command's usage
// on stderr.
type usageError struct {
	cmd   string // full name: "loudly dlq show"
	msg   string // empty: the usage alone says it (no command given)
	usage func(io.Writer)
}

func (e *usageError) Error() string { return e.cmd + ": " + e.msg }

// helpRequest is -h, --help or "help": not a failure, the usage on stdout and exit 0.
type helpRequest struct{ usage func(io.Writer) }

func (helpRequest) Error() string { return "help requested" }

// commandError is a command that failed, named in its message.
type commandError struct {
	cmd string
	err error
}

func (e *commandError) Error() string { return e.cmd + ": " + e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// exit is the one place an error becomes an exit code and a message.
func (c *cli) exit(err error) int {
	var (
		help     helpRequest
		usage    *usageError
		reported interface{ Reported() }
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &reported):
		return exitFailed // said already, before the command's last line (loudly demo's summary)
	case errors.As(err, &help):
		help.usage(c.stdout)
		return exitOK
	case errors.As(err, &usage):
		if usage.msg != "" {
			fmt.Fprintf(c.stderr, "%s\n", usage.Error())
			if usage.usage != nil {
				fmt.Fprintln(c.stderr)
			}
		}
		if usage.usage != nil {
			usage.usage(c.stderr)
		}
		return exitUsage
	}
	fmt.Fprintf(c.stderr, "%s\n", err)
	return exitFailed
}

// group is a level of the command tree: the program, or a command group such as
// "loudly dlq".
type group struct {
	name     string // full: "loudly dlq"
	about    string
	footer   string
	commands []command
}

func (g group) usage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  %s <command> [arguments]\n\nCommands:\n", g.about, g.name)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	help := command{name: "help", args: "[command]", summary: "show this help, or a command's"}
	for _, cmd := range append(g.commands[:len(g.commands):len(g.commands)], help) {
		fmt.Fprintf(tw, "  %s %s\t%s\n", cmd.name, cmd.args, cmd.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", g.name)
	if g.footer != "" {
		fmt.Fprintf(w, "\n%s", g.footer)
	}
}

// runGroup runs the command of g named by args[0]. "help", "-h" and "--help" ask for the
// usage of g (or, as "help NAME", of a command in it). A command's failure comes back
// named after the command.
func (c *cli) runGroup(ctx context.Context, g group, args []string) error {
	if len(args) == 0 {
		return &usageError{cmd: g.name, usage: g.usage}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			return helpRequest{g.usage}
		}
		name, rest = rest[0], append(rest[1:len(rest):len(rest)], "-h") // "help dlq list" is "dlq list -h"
	}
	for _, cmd := range g.commands {
		if cmd.name == name {
			cmd.name = g.name + " " + cmd.name
			return named(cmd.name, cmd.runE(ctx, c, cmd, rest))
		}
	}
	return &usageError{cmd: g.name, msg: fmt.Sprintf("unknown command %q", name), usage: g.usage}
}

// named names the command in a failure, unless the error already says who and how.
func named(cmd string, err error) error {
	var (
		help  helpRequest
		usage *usageError
		named *commandError
	)
	if err == nil || errors.As(err, &help) || errors.As(err, &usage) || errors.As(err, &named) {
		return err
	}
	return &commandError{cmd: cmd, err: err}
}

// leaf is the flag set of a command that does the work, with the flags every such command
// shares.
type leaf struct {
	fs    *flag.FlagSet // named for the command: "loudly dlq show"
	args  string        // synopsis after the name: "SEQ [-json]"
	about string        // what it does, in a sentence or two
	nats  string
	// natsFrom is where natsURL found the server: "" named (-nats, NATS_URL), "demo"
	// (the running demo's), "default" (nobody named one).
	natsFrom string
}

// newLeaf starts the flag set of cmd, with the -nats flag.
func (c *cli) newLeaf(cmd command, about string) *leaf {
	l := &leaf{fs: flag.NewFlagSet(cmd.name, flag.ContinueOnError), args: cmd.args, about: about}
	l.fs.SetOutput(io.Discard) // parse reports errors and prints usage itself, to stdout or stderr as the case asks
	l.fs.Usage = func() {}
	l.fs.StringVar(&l.nats, "nats", "", "NATS server `URL` (default: $NATS_URL, the running demo's, or "+defaultNATS+")")
	return l
}

func (l *leaf) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage:\n  %s %s\n\n%s\n\nFlags:\n", l.fs.Name(), l.args, l.about)
	l.fs.SetOutput(w)
	l.fs.PrintDefaults()
	l.fs.SetOutput(io.Discard)
}

// parseArgs parses args, flags and positional arguments in any order ("show 42 -json"
// and "show -json 42" alike; "--" ends the flags), and checks the number of positional
// arguments is within [min, max] (max < 0: no limit). The error is a helpRequest for -h,
// a *usageError for a bad command line: the command returns it as it is.
func (l *leaf) parseArgs(args []string, min, max int) (pos []string, err error) {
	for {
		err := l.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			return nil, helpRequest{l.usage}
		}
		if err != nil {
			return nil, l.usagef("%v", err)
		}
		rest := l.fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < min || max >= 0 && len(pos) > max {
		if len(pos) < min {
			return nil, l.usagef("missing arguments")
		}
		return nil, l.usagef("unexpected arguments: %s", strings.Join(pos[max:], " "))
	}
	return pos, nil
}

// usagef is a command line that parsed but makes no sense: exit 2, with the usage.
func (l *leaf) usagef(format string, args ...any) error {
	return &usageError{cmd: l.fs.Name(), msg: fmt.Sprintf(format, args...), usage: l.usage}
}

// refusef is a command line that is well formed but asks for what cannot be done (a
// scaffold's name or subject): exit 2 with the reason, and where the usage is, not the
// whole usage, which would bury the reason.
func (l *leaf) refusef(format string, args ...any) error {
	return &usageError{cmd: l.fs.Name(), msg: fmt.Sprintf(format, args...) + "\n(" + l.fs.Name() + " -h shows the usage)"}
}

// badConfig is a setting (a flag's value, an environment variable) that cannot be used:
// exit 2, with the reason but without the whole usage.
func (l *leaf) badConfig(err error) error {
	return &usageError{cmd: l.fs.Name(), msg: err.Error()}
}

// natsURL is the -nats flag if given, else NATS_URL, else the default; checked so that a
// typo is a clear error rather than a connection timeout.
func (l *leaf) natsURL(c *cli) (string, error) {
	name, v := "NATS_URL", l.nats
	if v != "" {
		name = "-nats"
	} else {
		v = c.getenv("NATS_URL")
	}
	l.natsFrom = ""
	if v == "" {
		l.natsFrom = "default"
	}
	if s, ok := c.running(); ok && v == "" {
		v, name = s.NATSURL, "the running demo's NATS URL"
		l.natsFrom = "demo"
	}
	r := env.New(func(string) string { return v })
	u := r.URL(name, cmp.Or(c.defaultNATS, defaultNATS), "nats", "tls") // what the services accept
	if err := r.Err(); err != nil {
		return "", l.badConfig(err)
	}
	// A server nobody named is named here, so an operator never mistakes whatever
	// answers on the default port for their deployment.
	switch l.natsFrom {
	case "demo":
		fmt.Fprintf(c.stderr, "%s: using the running demo's NATS server %s\n", l.fs.Name(), redact(u))
	case "default":
		fmt.Fprintf(c.stderr, "%s: no -nats, NATS_URL or running demo: using the default NATS server %s\n", l.fs.Name(), redact(u))
	}
	return u, nil
}

// checkLoudly makes sure a server nobody named (the default) is a Loudly's: one with the
// DEADLETTER stream every Loudly service creates at start-up. Anything else answering on
// the default port is not what the operator meant, and a command run against it would
// report "nothing there" as if all were well.
func (l *leaf) checkLoudly(ctx context.Context, js jetstream.JetStream, u string) error {
	if l.natsFrom != "default" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := js.Stream(ctx, deadletter.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		return fmt.Errorf("no Loudly at %s: the server answers, but has no %s stream, which every Loudly service creates "+
			"(start one with make demo, or point -nats or NATS_URL at your deployment)", redact(u), deadletter.Stream)
	case err != nil && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no Loudly at %s: the server answers, but not to JetStream (%v); start one with make demo, or point -nats or NATS_URL at your deployment", redact(u), err)
	}
	return nil // another error (a permission) is the command's to meet
}

// natsAuth is the operator's NATS credentials, read from the variables the services
// read (NATS_USER and NATS_PASSWORD, NATS_CREDS or NATS_NKEY_SEED): in a deployment with
// per-service users, the operator's user is the one allowed to write the fault bucket
// and redrive dead letters.
func (l *leaf) natsAuth(c *cli) ([]nats.Option, error) {
	r := env.New(c.getenv)
	auth := broker.ReadAuth(r)
	if err := r.Err(); err != nil {
		return nil, l.badConfig(err)
	}
	opts, err := auth.Options()
	if err != nil {
		return nil, l.badConfig(err)
	}
	return opts, nil
}

// connect opens a connection for one command. It deliberately does not use
// broker.Connect: an operator's tool must not create or reconfigure streams (an old
// binary would undo a newer service's configuration), and it should fail fast instead of
// reconnecting forever.
func (l *leaf) connect(c *cli) (*nats.Conn, jetstream.JetStream, error) {
	u, err := l.natsURL(c)
	if err != nil {
		return nil, nil, err
	}
	auth, err := l.natsAuth(c)
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(u, append(auth, nats.Name("loudly-cli"), nats.Timeout(5*time.Second), nats.NoReconnect())...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at %s: %w", redact(u), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if err := l.checkLoudly(context.Background(), js, u); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// writeJSON prints v as one indented JSON document.
func (c *cli) writeJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// redact hides the credentials of a URL shown in an error: a password, or a token given
// as the user name.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("REDACTED")
	return u.String()
}

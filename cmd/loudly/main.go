// Command loudly is the operator's tool for a running Loudly: it reads and acts on the
// broker the services use, so an on-call engineer can see what was given up on and put it
// back, without knowing the JetStream API.
//
// Each command group lives in its own file (dlq.go, …) and registers itself in commands.
// run is the whole program; main only hands it the process's arguments, streams and a
// context cancelled by Ctrl-C, so tests run exactly what a user runs, in-process.
//
// Exit codes: 0 success, 1 the command failed (broker unreachable, unknown letter, a
// redrive that did not complete), 2 the command line was wrong.
package main

import (
	"context"
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
// group. args is its synopsis after the name, as the usages show it. run receives the
// entry with name made full ("loudly dlq show"), and the arguments after the name.
type command struct {
	name    string
	args    string
	summary string
	run     func(ctx context.Context, c *cli, self command, args []string) int
}

// commands is the top level. A new group (drill, trace, new) adds one line here and its
// own file.
var commands = []command{
	{name: "dlq", args: "<command>", summary: "list, inspect and redrive dead letters", run: runDLQ},
	{name: "drill", args: "<command>", summary: "start and stop on-call drills (fault injection)", run: runDrill},
	{name: "trace", args: "ORDER_ID [-json]", summary: "follow one order through every hop; exit 1 if it is stuck", run: runTrace},
	{name: "new", args: "<command>", summary: "scaffold a new service wired like the others", run: runNew},
}

// top is the program itself: the group every command line starts in.
var top = group{
	name:  "loudly",
	about: "loudly is the operator's tool for a running Loudly.",
	footer: "Commands that talk to NATS connect to $NATS_URL (default " + defaultNATS + "); their\n" +
		"-nats flag overrides it.\n" +
		"Exit codes: 0 success, 1 the command failed, 2 bad command line.\n",
}

// cli is what every command writes to and reads its configuration from.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// run executes one command line (without the program name) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	g := top
	g.commands = commands
	return c.dispatch(ctx, g, args)
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

// dispatch runs the command of g named by args[0]. "help", "-h" and "--help" print the
// usage of g (or, as "help NAME", of a command in it) on stdout.
func (c *cli) dispatch(ctx context.Context, g group, args []string) int {
	if len(args) == 0 {
		g.usage(c.stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			g.usage(c.stdout)
			return exitOK
		}
		name, rest = rest[0], append(rest[1:len(rest):len(rest)], "-h") // "help dlq list" is "dlq list -h"
	}
	for _, cmd := range g.commands {
		if cmd.name == name {
			cmd.name = g.name + " " + cmd.name
			return cmd.run(ctx, c, cmd, rest)
		}
	}
	fmt.Fprintf(c.stderr, "%s: unknown command %q\n\n", g.name, name)
	g.usage(c.stderr)
	return exitUsage
}

// leaf is the flag set of a command that does the work, with the flags every such command
// shares.
type leaf struct {
	fs    *flag.FlagSet // named for the command: "loudly dlq show"
	args  string        // synopsis after the name: "SEQ [-json]"
	about string        // what it does, in a sentence or two
	nats  string
}

// newLeaf starts the flag set of cmd, with the -nats flag.
func (c *cli) newLeaf(cmd command, about string) *leaf {
	l := &leaf{fs: flag.NewFlagSet(cmd.name, flag.ContinueOnError), args: cmd.args, about: about}
	l.fs.SetOutput(io.Discard) // parse reports errors and prints usage itself, to stdout or stderr as the case asks
	l.fs.Usage = func() {}
	l.fs.StringVar(&l.nats, "nats", "", "NATS server `URL` (default: $NATS_URL, or "+defaultNATS+")")
	return l
}

func (l *leaf) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage:\n  %s %s\n\n%s\n\nFlags:\n", l.fs.Name(), l.args, l.about)
	l.fs.SetOutput(w)
	l.fs.PrintDefaults()
	l.fs.SetOutput(io.Discard)
}

// parse parses args, flags and positional arguments in any order ("show 42 -json" and
// "show -json 42" alike; "--" ends the flags), and checks the number of positional
// arguments is within [min, max] (max < 0: no limit). On -h it prints the usage to stdout;
// on a bad command line the problem and the usage to stderr. ok is false when the command
// must stop, with exit code code.
func (l *leaf) parse(c *cli, args []string, min, max int) (pos []string, code int, ok bool) {
	for {
		err := l.fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			l.usage(c.stdout)
			return nil, exitOK, false
		}
		if err != nil {
			return nil, l.usageError(c, "%v", err), false
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
			return nil, l.usageError(c, "missing arguments"), false
		}
		return nil, l.usageError(c, "unexpected arguments: %s", strings.Join(pos[max:], " ")), false
	}
	return pos, exitOK, true
}

// usageError reports a command line that parsed but makes no sense, and returns exitUsage.
func (l *leaf) usageError(c *cli, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "%s: %s\n\n", l.fs.Name(), fmt.Sprintf(format, args...))
	l.usage(c.stderr)
	return exitUsage
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
	r := env.New(func(string) string { return v })
	u := r.URL(name, defaultNATS, "nats", "tls") // what the services accept
	return u, r.Err()
}

// connect opens a connection for one command. It deliberately does not use
// broker.Connect: an operator's tool must not create or reconfigure streams (an old
// binary would undo a newer service's configuration), and it should fail fast instead of
// reconnecting forever.
func (l *leaf) connect(c *cli) (*nats.Conn, jetstream.JetStream, int, bool) {
	u, err := l.natsURL(c)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", l.fs.Name(), err)
		return nil, nil, exitUsage, false
	}
	nc, err := nats.Connect(u, nats.Name("loudly-cli"), nats.Timeout(5*time.Second), nats.NoReconnect())
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: connect to NATS at %s: %v\n", l.fs.Name(), redact(u), err)
		return nil, nil, exitFailed, false
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		fmt.Fprintf(c.stderr, "%s: %v\n", l.fs.Name(), err)
		return nil, nil, exitFailed, false
	}
	return nc, js, exitOK, true
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

package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"loudly/internal/demo"
)

// result is what one run of the program printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// loudly runs a command line in-process, exactly as main would.
func loudly(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestRun_Help(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // on stdout
	}{
		{[]string{"help"}, []string{"Usage:", "loudly <command>", "dlq <command>", "NATS_URL"}},
		{[]string{"-h"}, []string{"Usage:", "dlq <command>"}},
		{[]string{"--help"}, []string{"Usage:", "dlq <command>"}},
		{[]string{"help", "dlq"}, []string{"loudly dlq <command>", "list [-limit N] [-json]", "redrive SEQ..."}},
		{[]string{"dlq", "-h"}, []string{"loudly dlq <command>", "show SEQ [-json]"}},
		{[]string{"dlq", "help"}, []string{"loudly dlq <command>", "stats"}},
		{[]string{"help", "dlq", "list"}, []string{"loudly dlq list [-limit N] [-json]", "-limit N", "-nats URL"}},
		{[]string{"dlq", "redrive", "-h"}, []string{"loudly dlq redrive", "-all", "-reason R", "-dry-run"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := loudly(t, tc.args...)
			if r.code != exitOK || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

func TestRun_BadCommandLine(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"help", "bogus"},
		{"-nats", "nats://127.0.0.1:4222", "dlq", "list"}, // -nats belongs to the command
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := loudly(t, args...)
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "Usage:") {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 and the usage on stderr only", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// Commands return errors; exit alone turns them into an exit code and a message.
func TestExit_MapsErrorsInOnePlace(t *testing.T) {
	leafOf := func(c *cli) *leaf {
		return c.newLeaf(command{name: "loudly test", args: "X"}, "A command for this test.")
	}
	for _, tc := range []struct {
		name           string
		err            func(l *leaf) error
		code           int
		stdout, stderr []string // substrings; nil: must be empty
	}{
		{"success", func(*leaf) error { return nil }, exitOK, nil, nil},
		{"help", func(l *leaf) error { _, err := l.parseArgs([]string{"-h"}, 0, 0); return err }, exitOK,
			[]string{"Usage:", "loudly test X", "-nats URL"}, nil},
		{"a bad command line", func(l *leaf) error { return l.usagef("no %s", "way") }, exitUsage,
			nil, []string{"loudly test: no way\n\nUsage:", "-nats URL"}},
		{"a bad flag", func(l *leaf) error { _, err := l.parseArgs([]string{"-bogus"}, 0, 0); return err }, exitUsage,
			nil, []string{"flag provided but not defined", "Usage:"}},
		{"a bad setting", func(l *leaf) error {
			l.nats = "http://x"
			_, err := l.natsURL(&cli{getenv: func(string) string { return "" }})
			return err
		}, exitUsage,
			nil, []string{"loudly test: -nats"}},
		{"a failure, named after its command", func(*leaf) error { return named("loudly test", errors.New("broker gone")) }, exitFailed,
			nil, []string{"loudly test: broker gone\n"}},
		{"a failure named once, however deep", func(*leaf) error { return named("loudly", named("loudly test", errors.New("broker gone"))) }, exitFailed,
			nil, []string{"loudly test: broker gone\n"}},
		// The demo printed why it failed before its summary line, which stays the last line.
		{"a failure reported already", func(*leaf) error {
			return named("loudly demo", &demo.Failed{Reason: errors.New("load: lost=3")})
		}, exitFailed, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			c := &cli{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
			code := c.exit(tc.err(leafOf(c)))
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, out := range []struct {
				got  string
				want []string
			}{{stdout.String(), tc.stdout}, {stderr.String(), tc.stderr}} {
				if len(out.want) == 0 && out.got != "" {
					t.Errorf("printed %q, want nothing there", out.got)
				}
				for _, w := range out.want {
					if !strings.Contains(out.got, w) {
						t.Errorf("output lacks %q:\n%s", w, out.got)
					}
				}
			}
			if strings.Count(stderr.String(), "loudly test:") > 1 {
				t.Errorf("the command is named twice:\n%s", stderr.String())
			}
		})
	}
}

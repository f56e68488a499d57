package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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

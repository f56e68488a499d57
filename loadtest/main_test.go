package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring of the error; empty for valid flags
		check   func(t *testing.T, c flags)
	}{
		{name: "defaults are valid", check: func(t *testing.T, c flags) {
			if c.URL != "http://127.0.0.1:8080" || c.Rate != 50 || c.Duration != 30*time.Second || c.Poison != 0 ||
				c.Verify || c.Timeout != 2*time.Minute || c.Concurrency != 64 {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "a full command line", args: []string{"-url", "http://orders:8080/", "-nats", "nats://nats:4222",
			"-rate", "500", "-duration", "30s", "-poison", "0.02", "-verify", "-timeout", "3m", "-concurrency", "128"},
			check: func(t *testing.T, c flags) {
				if c.URL != "http://orders:8080" {
					t.Errorf("URL = %q, want the trailing slash trimmed", c.URL)
				}
				if c.Total() != 15000 || !c.Verify || c.Poison != 0.02 || c.Timeout != 3*time.Minute || c.Concurrency != 128 {
					t.Errorf("config = %+v", c)
				}
			}},
		{name: "poison may be 0 or 1", args: []string{"-poison", "1"}},
		{name: "rate of zero", args: []string{"-rate", "0"}, wantErr: "-rate 0: must be greater than 0"},
		{name: "negative rate", args: []string{"-rate", "-5"}, wantErr: "-rate -5"},
		{name: "rate not a number", args: []string{"-rate", "NaN"}, wantErr: "-rate NaN"},
		{name: "infinite rate", args: []string{"-rate", "+Inf"}, wantErr: "-rate +Inf"},
		{name: "rate that is not a number at all", args: []string{"-rate", "fast"}, wantErr: "invalid value"},
		{name: "zero duration", args: []string{"-duration", "0s"}, wantErr: "-duration 0s"},
		{name: "no order scheduled", args: []string{"-rate", "0.1", "-duration", "1s"}, wantErr: "schedules no order"},
		{name: "negative poison", args: []string{"-poison", "-0.1"}, wantErr: "-poison -0.1: must be between 0 and 1"},
		{name: "poison above one", args: []string{"-poison", "1.5"}, wantErr: "-poison 1.5"},
		{name: "url without scheme", args: []string{"-url", "127.0.0.1:8080"}, wantErr: "-url"},
		{name: "nats url checked when poison is sent", args: []string{"-poison", "0.1", "-nats", "http://x"}, wantErr: "-nats"},
		{name: "nats url ignored without poison", args: []string{"-nats", "http://x"}},
		{name: "zero timeout", args: []string{"-timeout", "0s"}, wantErr: "-timeout"},
		{name: "a warm-up", args: []string{"-warmup", "3s", "-duration", "18s"}, check: func(t *testing.T, c flags) {
			if c.Warmup != 3*time.Second || c.Total() != 900 {
				t.Errorf("warm-up %v, %d orders; want 3s, and the warm-up's orders in the schedule (900)", c.Warmup, c.Total())
			}
		}},
		{name: "negative warm-up", args: []string{"-warmup", "-1s"}, wantErr: "-warmup -1s"},
		{name: "warm-up as long as the run", args: []string{"-warmup", "30s"}, wantErr: "-warmup 30s: must be at least 0 and shorter than -duration"},
		{name: "zero concurrency", args: []string{"-concurrency", "0"}, wantErr: "-concurrency 0"},
		{name: "stray argument", args: []string{"-verify", "extra"}, wantErr: "unexpected arguments: extra"},
		{name: "every problem at once", args: []string{"-rate", "0", "-poison", "2"}, wantErr: "-rate 0: must be greater than 0\n  -poison 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseFlags(%q): %v", tt.args, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("parseFlags(%q) = nil error, want one containing %q", tt.args, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("parseFlags(%q) = %q, want it to contain %q", tt.args, err, tt.wantErr)
			}
			if tt.check != nil && err == nil {
				tt.check(t, c)
			}
		})
	}
}

func TestParseFlags_Help(t *testing.T) {
	var out strings.Builder
	_, err := parseFlags([]string{"-h"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(out.String(), "-poison") {
		t.Errorf("usage does not list -poison:\n%s", out.String())
	}
}

package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"loudly/pkg/faults"
	"loudly/services/drill"
)

func TestDrill_StartStatusStop(t *testing.T) {
	url, js := newBroker(t, false)
	drill := func(args ...string) result {
		return loudly(t, append(append([]string{"drill"}, args...), "-nats", url)...)
	}

	if r := drill("status"); r.code != 0 || !strings.Contains(r.stdout, "no active faults") {
		t.Fatalf("status before: %+v", r)
	}
	if r := drill("start", "db-latency", "-intensity", "0.25", "-for", "10m"); r.code != 0 || !strings.Contains(r.stdout, "started db-latency at 0.25 seconds") {
		t.Fatalf("start: %+v", r)
	}
	if r := drill("start", "outbox-stall"); r.code != 0 {
		t.Fatalf("start: %+v", r)
	}
	r := drill("status", "-json")
	var views []drillView
	if err := json.Unmarshal([]byte(r.stdout), &views); err != nil || len(views) != 2 {
		t.Fatalf("status -json: %v %s", err, r.stdout)
	}
	if v := views[0]; v.Name != "db-latency" || v.Intensity != 0.25 || time.Until(v.Until) < 9*time.Minute {
		t.Errorf("db-latency: %+v", v)
	}
	if v := views[1]; v.Name != "outbox-stall" || !v.Until.IsZero() || v.Intensity != 1 {
		t.Errorf("outbox-stall: %+v", v)
	}
	if r := drill("stop", "db-latency"); r.code != 0 {
		t.Fatalf("stop: %+v", r)
	}
	if active, _ := faults.List(context.Background(), js); len(active) != 1 || active[0].Name != "outbox-stall" {
		t.Fatalf("after stop: %+v", active)
	}
	if r := drill("stop"); r.code != 0 || !strings.Contains(r.stdout, "stopped outbox-stall") {
		t.Fatalf("stop all: %+v", r)
	}
	if active, _ := faults.List(context.Background(), js); len(active) != 0 {
		t.Fatalf("after stop all: %+v", active)
	}
}

func TestDrill_BadUsage(t *testing.T) {
	url, _ := newBroker(t, false)
	for _, args := range [][]string{
		{"drill", "start"},
		{"drill", "start", "rm-rf"},
		{"drill", "start", "db-outage", "-for", "-1m"},
		{"drill", "stop", "nope"},
		{"drill", "frobnicate"},
	} {
		if r := loudly(t, append(args, "-nats", url)...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, r.code, exitUsage, r.stderr)
		}
	}
	if r := loudly(t, "drill", "start", "db-outage", "-intensity", "3", "-nats", url); r.code != exitFailed || !strings.Contains(r.stderr, "outside") {
		t.Errorf("intensity 3: %+v", r)
	}
	if r := loudly(t, "drill", "list"); r.code != 0 || strings.Count(r.stdout, "\n") != len(drill.Catalog)+1 {
		t.Errorf("list: %+v", r)
	}
}

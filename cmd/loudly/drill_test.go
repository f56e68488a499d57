package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"loudly/pkg/faults"
	"loudly/services/drill"
)

// acceptDrills answers the drills check for every service of the catalogue, as the
// services do when started with DRILLS=enabled.
func acceptDrills(t *testing.T, url string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	for _, svc := range []string{"order", "inventory"} {
		if _, err := drill.Accept(nc, svc); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestDrill_StartStatusStop(t *testing.T) {
	url, js := newBroker(t, false)
	acceptDrills(t, url)
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

// A deployment whose services run without DRILLS=enabled: start says so, exit 1, and
// writes no fault; stop and status still work.
func TestDrill_StartIsRefusedByAServiceWithoutDrills(t *testing.T) {
	url, js := newBroker(t, false)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := drill.Accept(nc, "order"); err != nil { // order accepts drills, inventory does not
		t.Fatal(err)
	}
	r := loudly(t, "drill", "start", "silent-skip", "-nats", url)
	if r.code != exitFailed || !strings.Contains(r.stderr, "inventory does not accept drills (DRILLS is not enabled)") {
		t.Errorf("start silent-skip against inventory without drills: %+v", r)
	}
	if active, _ := faults.List(context.Background(), js); len(active) != 0 {
		t.Errorf("a refused drill was written to the bucket: %+v", active)
	}
	if r := loudly(t, "drill", "start", "outbox-stall", "-nats", url); r.code != exitOK {
		t.Errorf("start outbox-stall against order with drills: %+v", r)
	}
	if r := loudly(t, "drill", "stop", "-nats", url); r.code != exitOK || !strings.Contains(r.stdout, "stopped outbox-stall") {
		t.Errorf("stop: %+v", r)
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

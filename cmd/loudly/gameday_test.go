package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"loudly/internal/gameday"
	"loudly/pkg/faults"
	"loudly/services/drill"
)

// The command end to end, on a real broker: the faults it starts are in the bucket for
// -each and gone after; a Prometheus that fires each drill's alert while its fault is on
// gives a passing scorecard in the seed's order.
func TestGameday_Command(t *testing.T) {
	url, js := newBroker(t, false)
	acceptDrills(t, url)
	var mu sync.Mutex
	var seen []faults.Fault
	var onFault context.CancelFunc // called when a poll sees a fault on: Ctrl-C mid-drill
	prom := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var data any
		switch r.URL.Path {
		case "/api/v1/alerts":
			active, err := faults.List(r.Context(), js)
			if err != nil {
				http.Error(rw, err.Error(), 500)
				return
			}
			alerts := []promv1.Alert{}
			mu.Lock()
			for _, f := range active {
				if !slices.ContainsFunc(seen, func(s faults.Fault) bool { return s.Name == f.Name }) {
					seen = append(seen, f)
				}
				spec, _ := drill.Lookup(f.Name)
				alerts = append(alerts, promv1.Alert{Labels: model.LabelSet{"alertname": model.LabelValue(spec.Alerts[0])}, State: promv1.AlertStateFiring})
				if onFault != nil {
					onFault()
				}
			}
			mu.Unlock()
			data = map[string]any{"alerts": alerts}
		case "/api/v1/query":
			data = map[string]any{"resultType": "vector", "result": []any{map[string]any{"metric": map[string]string{}, "value": []any{0, "0"}}}}
		case "/api/v1/rules":
			data = map[string]any{"groups": []any{}}
		}
		_ = json.NewEncoder(rw).Encode(map[string]any{"status": "success", "data": data})
	}))
	defer prom.Close()

	args := []string{"drill", "gameday", "--seed", "7", "--duration", "2500ms", "-each", "1s", "-recover", "200ms",
		"-prometheus", prom.URL, "-nats", url, "-json"}
	r := loudly(t, args...)
	if r.code != exitOK {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	var card gameday.Scorecard
	if err := json.Unmarshal([]byte(r.stdout), &card); err != nil {
		t.Fatalf("stdout is not one JSON scorecard: %v\n%s", err, r.stdout)
	}
	want := gameday.NewSchedule(7, 2500*time.Millisecond, time.Second, 200*time.Millisecond, drill.Catalog).Drills
	var ran []string
	for _, d := range card.Drills {
		ran = append(ran, d.Drill)
		if !d.Passed() || *d.TimeToDetect > 0.5 {
			t.Errorf("%s: %+v", d.Drill, d)
		}
	}
	if len(want) != 2 || !slices.Equal(ran, want) || !card.Passed || card.Seed != 7 {
		t.Errorf("ran %v, want %v; scorecard %+v", ran, want, card)
	}
	for _, f := range seen {
		if got := f.Until.Sub(f.Started); got != time.Second {
			t.Errorf("%s started for %s, want -each (1s), so it ends by itself", f.Name, got)
		}
	}
	if len(seen) != 2 {
		t.Errorf("faults seen active: %+v", seen)
	}
	if active, _ := faults.List(context.Background(), js); len(active) != 0 {
		t.Errorf("faults left active: %+v", active)
	}
	if !strings.Contains(r.stderr, "start "+want[0]) {
		t.Errorf("progress on stderr:\n%s", r.stderr)
	}

	t.Run("Ctrl-C", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		mu.Lock()
		onFault = cancel
		mu.Unlock()
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"drill", "gameday", "-seed", "7", "-duration", "1h", "-each", "1s", "-recover", "1s",
			"-prometheus", prom.URL, "-nats", url}, &stdout, &stderr)
		if code != exitFailed || !strings.Contains(stdout.String(), "INTERRUPTED") || !strings.Contains(stdout.String(), want[0]) {
			t.Errorf("exit %d\nstdout %s\nstderr %s", code, stdout.String(), stderr.String())
		}
		if active, _ := faults.List(context.Background(), js); len(active) != 0 {
			t.Errorf("faults left active after Ctrl-C: %+v", active)
		}
	})
}

func TestGameday_BadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-seed", "1"}, "-duration is required"},
		{[]string{"-duration", "4m"}, "does not fit one drill"},
		{[]string{"-duration", "1h", "-each", "0s"}, "-each must be positive"},
		{[]string{"-duration", "1h", "-recover", "-1s"}, "-recover must not be negative"},
		{[]string{"-duration", "1h", "-seed", "-3"}, "invalid value"},
		{[]string{"-duration", "soon"}, "invalid value"},
		{[]string{"-duration", "1h", "-prometheus", "ftp://prom:9090"}, "scheme must be one of http, https"},
		{[]string{"-duration", "1h", "-nats", "http://x"}, "scheme must be one of nats"},
		{[]string{"-duration", "1h", "stock-out"}, "unexpected arguments"},
		{[]string{"-duration", "1h", "-bogus"}, "flag provided but not defined"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := loudly(t, append([]string{"drill", "gameday"}, tc.args...)...)
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 and %q", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
	t.Run("PROMETHEUS_URL", func(t *testing.T) {
		t.Setenv("PROMETHEUS_URL", "prom:9090")
		if r := loudly(t, "drill", "gameday", "-duration", "1h"); r.code != exitUsage || !strings.Contains(r.stderr, "PROMETHEUS_URL") {
			t.Errorf("%+v", r)
		}
	})
	t.Run("help", func(t *testing.T) {
		r := loudly(t, "drill", "gameday", "-h")
		for _, want := range []string{"-seed N", "-duration D", "-each D", "-recover D", "-prometheus URL", "PROMETHEUS_URL", "-json"} {
			if r.code != exitOK || !strings.Contains(r.stdout, want) {
				t.Errorf("help lacks %q (exit %d):\n%s", want, r.code, r.stdout)
			}
		}
		if r := loudly(t, "drill", "help"); !strings.Contains(r.stdout, "gameday -seed N -duration D") {
			t.Errorf("drill help:\n%s", r.stdout)
		}
	})
	t.Run("nothing to talk to", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		url, _ := newBroker(t, false)
		if r := loudly(t, "drill", "gameday", "-duration", "1h", "-prometheus", dead.URL, "-nats", url); r.code != exitFailed || !strings.Contains(r.stderr, "prometheus at") {
			t.Errorf("prometheus down: %+v", r)
		}
		if r := loudly(t, "drill", "gameday", "-duration", "1h", "-nats", "nats://127.0.0.1:1"); r.code != exitFailed || !strings.Contains(r.stderr, "connect to NATS") {
			t.Errorf("NATS down: %+v", r)
		}
	})
}

package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// PrometheusConfig is what a test's Prometheus scrapes and evaluates.
type PrometheusConfig struct {
	// Targets maps a job name to the host:port addresses serving /metrics.
	Targets map[string][]string
	// RuleFiles are Prometheus rule files to load (alerting and recording rules).
	RuleFiles      []string
	ScrapeInterval time.Duration // default 1s
	EvalInterval   time.Duration // default 1s
}

// Prometheus is a real Prometheus server of the release the compose demo runs (built by
// `make tools`, see PrometheusPath) started for one test, with exemplar storage on, on a
// free loopback port.
type Prometheus struct {
	URL string
	log string
}

// StartPrometheus starts Prometheus, waits until it is ready, and stops it at cleanup. It
// fails the test with a hint when the binary is missing; it never skips.
func StartPrometheus(t testing.TB, cfg PrometheusConfig) *Prometheus {
	t.Helper()
	bin := PrometheusPath(t)
	if cfg.ScrapeInterval == 0 {
		cfg.ScrapeInterval = time.Second
	}
	if cfg.EvalInterval == 0 {
		cfg.EvalInterval = time.Second
	}
	dir := t.TempDir()
	var yml strings.Builder
	fmt.Fprintf(&yml, "global:\n  scrape_interval: %s\n  evaluation_interval: %s\n", cfg.ScrapeInterval, cfg.EvalInterval)
	if len(cfg.RuleFiles) > 0 {
		yml.WriteString("rule_files:\n")
		for _, f := range cfg.RuleFiles {
			abs, _ := filepath.Abs(f)
			fmt.Fprintf(&yml, "  - %q\n", abs)
		}
	}
	yml.WriteString("scrape_configs:\n")
	for job, targets := range cfg.Targets {
		quoted := make([]string, len(targets))
		for i, tg := range targets {
			quoted[i] = fmt.Sprintf("%q", tg)
		}
		fmt.Fprintf(&yml, "  - job_name: %q\n    static_configs:\n      - targets: [%s]\n", job, strings.Join(quoted, ", "))
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(yml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--enable-feature=exemplar-storage",
		"--web.enable-lifecycle",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	withParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start prometheus: %v", err)
	}
	p := &Prometheus{URL: fmt.Sprintf("http://127.0.0.1:%d", port), log: logPath}
	stopOnCleanup(t, cmd, logFile, 10*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: prometheus not ready after 30s; log:\n%s", p.LogTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LogTail returns the end of Prometheus's log, for failure messages.
func (p *Prometheus) LogTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// API is Prometheus's official HTTP API client, talking to this server. Tests use it
// for what the helpers below do not cover, with their own context and error handling.
func (p *Prometheus) API() promv1.API {
	c, err := promapi.NewClient(promapi.Config{Address: p.URL})
	if err != nil { // only for an unparsable address, which StartPrometheus never makes
		panic(fmt.Sprintf("testenv: prometheus client for %s: %v", p.URL, err))
	}
	return promv1.NewAPI(c)
}

// Query runs an instant PromQL query and returns the vector (nothing for another result
// type). A query error fails the test with Prometheus's message.
func (p *Prometheus) Query(t testing.TB, q string) model.Vector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	v, _, err := p.API().Query(ctx, q, time.Time{})
	if err != nil {
		t.Fatalf("prometheus query %s: %v", q, err)
	}
	vec, _ := v.(model.Vector)
	return vec
}

// QueryExemplars returns the exemplars of the series matched by q in the last window.
func (p *Prometheus) QueryExemplars(t testing.TB, q string, window time.Duration) []promv1.Exemplar {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	now := time.Now()
	res, err := p.API().QueryExemplars(ctx, q, now.Add(-window), now.Add(time.Minute))
	if err != nil {
		t.Fatalf("prometheus exemplars of %s: %v", q, err)
	}
	var out []promv1.Exemplar
	for _, s := range res {
		out = append(out, s.Exemplars...)
	}
	return out
}

// Alerts returns the pending and firing alerts.
func (p *Prometheus) Alerts(t testing.TB) []promv1.Alert {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	res, err := p.API().Alerts(ctx)
	if err != nil {
		t.Fatalf("prometheus alerts: %v", err)
	}
	return res.Alerts
}

// WaitTargetsUp waits until every scrape target of Prometheus has been scraped
// successfully.
func (p *Prometheus) WaitTargetsUp(t testing.TB, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, "every scrape target up", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		defer cancel()
		res, err := p.API().Targets(ctx)
		if err != nil {
			t.Fatalf("prometheus targets: %v", err)
		}
		for _, tg := range res.Active {
			if tg.Health != promv1.HealthGood {
				return false
			}
		}
		return len(res.Active) > 0
	})
}

// apiTimeout bounds one call of the helpers, so a wedged Prometheus fails the test
// instead of hanging it.
const apiTimeout = 30 * time.Second

// stopOnCleanup interrupts a program the test started when the test ends, kills it if it
// has not exited within grace, and closes its log file.
func stopOnCleanup(t testing.TB, cmd *exec.Cmd, logFile io.Closer, grace time.Duration) {
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
		logFile.Close()
	})
}

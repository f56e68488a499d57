package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		logFile.Close()
	})
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

// API calls a Prometheus HTTP API path (e.g. "/api/v1/query") with params and decodes the
// "data" field into out. A query error fails the test with Prometheus's message.
func (p *Prometheus) API(t testing.TB, path string, params url.Values, out any) {
	t.Helper()
	res, err := http.PostForm(p.URL+path, params)
	if err != nil {
		t.Fatalf("prometheus %s: %v", path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Status != "success" {
		t.Fatalf("prometheus %s %v: %s %s", path, params, env.Error, bytes.TrimSpace(body))
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			t.Fatalf("prometheus %s: decode: %v", path, err)
		}
	}
}

// Sample is one series of an instant query result.
type Sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// Query runs an instant PromQL query and returns the vector.
func (p *Prometheus) Query(t testing.TB, q string) []Sample {
	t.Helper()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	p.API(t, "/api/v1/query", url.Values{"query": {q}}, &data)
	var out []Sample
	if data.ResultType == "vector" {
		_ = json.Unmarshal(data.Result, &out)
	}
	return out
}

// Exemplar is one exemplar returned by /api/v1/query_exemplars.
type Exemplar struct {
	Labels map[string]string `json:"labels"`
	Value  string            `json:"value"`
}

// QueryExemplars returns the exemplars of the series matched by q in the last window.
func (p *Prometheus) QueryExemplars(t testing.TB, q string, window time.Duration) []Exemplar {
	t.Helper()
	var data []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []Exemplar        `json:"exemplars"`
	}
	now := time.Now()
	p.API(t, "/api/v1/query_exemplars", url.Values{
		"query": {q},
		"start": {fmt.Sprint(now.Add(-window).Unix())},
		"end":   {fmt.Sprint(now.Add(time.Minute).Unix())},
	}, &data)
	var out []Exemplar
	for _, s := range data {
		out = append(out, s.Exemplars...)
	}
	return out
}

// Alert is one alert as /api/v1/alerts shows it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

// Alerts returns the pending and firing alerts.
func (p *Prometheus) Alerts(t testing.TB) []Alert {
	t.Helper()
	var data struct {
		Alerts []Alert `json:"alerts"`
	}
	res, err := http.Get(p.URL + "/api/v1/alerts")
	if err != nil {
		t.Fatalf("prometheus alerts: %v", err)
	}
	defer res.Body.Close()
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(env.Data, &data)
	return data.Alerts
}

// WaitTargetsUp waits until every target of Prometheus has been scraped successfully.
func (p *Prometheus) WaitTargetsUp(t testing.TB, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, "every scrape target up", func() bool {
		up := p.Query(t, "up")
		if len(up) == 0 {
			return false
		}
		for _, s := range up {
			if s.Value[1] != "1" {
				return false
			}
		}
		return true
	})
}

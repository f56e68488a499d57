package demo

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"
	"time"

	"loudly/alerts"
	"loudly/internal/localpg"
)

// findPrometheus returns the prometheus binary to run: bin when given, else the first on
// PATH, else the newest that `make tools` built (LOUDLY_TOOLS_DIR, default
// ~/.cache/loudly-tools). Empty when there is none.
func findPrometheus(bin string, getenv func(string) string) string {
	if bin != "" {
		return bin
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	dir := getenv("LOUDLY_TOOLS_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(cache, "loudly-tools")
	}
	found, _ := filepath.Glob(filepath.Join(dir, "prometheus-v*", "prometheus"))
	slices.Sort(found) // module versions of one major: v0.313.2 < v0.314.0
	for i := len(found) - 1; i >= 0; i-- {
		if fi, err := os.Stat(found[i]); err == nil && fi.Mode()&0o111 != 0 {
			return found[i]
		}
	}
	return ""
}

// The scrape and evaluation intervals of the compose demo
// (deploy/compose/prometheus/prometheus.yml), so the alerts fire in the times their
// drill guides give.
const promInterval = "5s"

// prometheus is the Prometheus child process.
type prometheus struct {
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startPrometheus writes the configuration — the compose demo's intervals, its rule file
// (alerts.PrometheusRules of the production rules, what alerts/prometheus-rules.yaml
// holds) and a job per service named as in compose — and starts bin on addr with its
// data under dir, in its own process group (a Ctrl-C in the terminal is the demo's to
// handle, which stops it last) and killed by the kernel if the demo dies.
func startPrometheus(bin, dir, addr string, targets map[string]string, logf *os.File) (*prometheus, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	rules, err := alerts.PrometheusRules(alerts.Rules(alerts.Production))
	if err != nil {
		return nil, err
	}
	rulesPath := filepath.Join(dir, "prometheus-rules.yaml")
	if err := os.WriteFile(rulesPath, rules, 0o644); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf("# Written by loudly demo; the compose demo's deploy/compose/prometheus/prometheus.yml for one machine.\n"+
		"global:\n  scrape_interval: %s\n  evaluation_interval: %s\nrule_files:\n  - %q\nscrape_configs:\n",
		promInterval, promInterval, rulesPath)
	for _, job := range []string{"order", "inventory", "prometheus"} {
		cfg += fmt.Sprintf("  - job_name: %s\n    static_configs:\n      - targets: [%q]\n", job, targets[job])
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--enable-feature=exemplar-storage",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	localpg.DieWithParent(cmd, syscall.SIGKILL)
	p := &prometheus{url: "http://" + addr, cmd: cmd, exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The parent-death signal follows the thread that started the child.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("prometheus exited while starting (log: %s)", logf.Name())
		default:
		}
		if res, err := http.Get(p.url + "/-/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("prometheus not ready after 60s (log: " + logf.Name() + ")")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop asks Prometheus to shut down (SIGTERM), and kills it after 15s.
func (p *prometheus) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

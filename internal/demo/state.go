package demo

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// DefaultDir is the data directory of a demo started in the repository's root; the
// LOUDLY_DEMO_DIR variable names another.
const DefaultDir = ".loudly-demo"

// EnvDir is the variable that names the data directory, for the demo and for the loudly
// commands that look for a running demo.
const EnvDir = "LOUDLY_DEMO_DIR"

const stateFile = "demo.json"

// State is what a running demo tells the loudly commands, in its data directory: where
// its broker, Prometheus and services listen, so `loudly drill start silent-skip` finds
// it with no flags.
type State struct {
	Pid           int    `json:"pid"`
	NATSURL       string `json:"nats_url"`
	PrometheusURL string `json:"prometheus_url,omitempty"` // empty: running without Prometheus
	OrderURL      string `json:"order_url"`
	InventoryURL  string `json:"inventory_url"`
	DatabaseURL   string `json:"database_url"` // for psql: the drill guides' queries and recoveries
	LogDir        string `json:"log_dir"`      // the services' logs: the demo keeps no traces, its log lines carry their ids
}

func writeState(dir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

// readState reads the state file of dir; ok is false when there is none or its demo is
// no longer running.
func readState(dir string) (State, bool) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return State{}, false
	}
	var s State
	if json.Unmarshal(b, &s) != nil || !alive(s.Pid) {
		return State{}, false
	}
	return s, true
}

// alive reports whether a process pid exists (signal 0 checks without sending).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Running returns the state of the demo running in the data directory that getenv's
// LOUDLY_DEMO_DIR names or, when unset, of the nearest .loudly-demo in the working
// directory or above it; ok is false when no demo runs there.
func Running(getenv func(string) string) (s State, ok bool) {
	if dir := getenv(EnvDir); dir != "" {
		return readState(dir)
	}
	dir, err := os.Getwd()
	if err != nil {
		return State{}, false
	}
	for {
		if s, ok := readState(filepath.Join(dir, DefaultDir)); ok {
			return s, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return State{}, false
		}
		dir = parent
	}
}

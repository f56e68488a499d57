// Package health serves /healthz (the process is alive) and /readyz (every dependency the
// service needs answers, so it should get traffic).
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Check returns nil when its dependency is usable.
type Check func(ctx context.Context) error

// Checks is a set of named readiness checks.
type Checks struct {
	mu     sync.Mutex
	checks map[string]Check
}

// Add registers a named check.
func (c *Checks) Add(name string, check Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.checks == nil {
		c.checks = map[string]Check{}
	}
	c.checks[name] = check
}

// Run runs every check with a 2s budget each and returns the failures by name.
func (c *Checks) Run(ctx context.Context) map[string]string {
	c.mu.Lock()
	names := make([]string, 0, len(c.checks))
	for n := range c.checks {
		names = append(names, n)
	}
	c.mu.Unlock()
	sort.Strings(names)
	failures := map[string]string{}
	for _, n := range names {
		c.mu.Lock()
		check := c.checks[n]
		c.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := check(cctx); err != nil {
			failures[n] = err.Error()
		}
		cancel()
	}
	return failures
}

// Register mounts /healthz and /readyz on mux.
func (c *Checks) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if f := c.Run(r.Context()); len(f) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "failures": f})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

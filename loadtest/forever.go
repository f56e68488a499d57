package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"loudly/loadtest/load"
)

// defaultStatusAddr is where a -forever load generator reports that it is running.
const defaultStatusAddr = "127.0.0.1:9464"

// forever runs rounds back to back until ctx ends: the steady load of the compose demo
// and of drills. A failed round (the order service down, something lost) is reported and
// the next one starts; /readyz answers 200 only while the last round sent orders.
func forever(ctx context.Context, cfg config, statusAddr string, stdout, stderr io.Writer) {
	var healthy atomic.Bool
	ln, err := net.Listen("tcp", statusAddr)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: -status-addr %s: %v (continuing without it)\n", statusAddr, err)
	} else {
		srv := &http.Server{ReadHeaderTimeout: 2 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !healthy.Load() {
				http.Error(w, "last round sent nothing", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	for round := 1; ctx.Err() == nil; round++ {
		s, err := run(ctx, cfg, stdout, stderr)
		healthy.Store(s.Accepted > 0)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, load.ErrNotStarted):
			fmt.Fprintf(stderr, "loadtest: round %d: %v; retrying in 5s\n", round, err)
			sleep(ctx, 5*time.Second)
		case err != nil:
			fmt.Fprintf(stderr, "loadtest: round %d: %v\n", round, err)
		}
	}
}

// sleep waits for d and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool { return load.Sleep(ctx, d) }

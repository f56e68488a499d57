// Package profiling serves the Go runtime's profiles (net/http/pprof) so an engineer can
// take a CPU or heap profile of a service under load:
//
//	PPROF_ADDR=127.0.0.1:6060 ./order &
//	go tool pprof -top http://127.0.0.1:6060/debug/pprof/profile?seconds=20
//
// It is off unless an address is given, and it only ever listens on a loopback address:
// a profile shows memory contents and a running profile slows the process, so it is
// something a person on the machine asks for, never an endpoint on the service's network.
// The handlers are on a mux of their own, not on http.DefaultServeMux, so nothing else a
// service imports can put them on its public port.
package profiling

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// EnvAddr is the variable services read the profiling address from; unset or empty is off.
const EnvAddr = "PPROF_ADDR"

// CheckAddr reports whether addr may be served on: empty (off), or host:port whose host is
// a loopback IP or "localhost". A config loader calls it so a bad address is reported with
// every other bad variable, before anything starts.
func CheckAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s=%q: want a loopback host:port such as 127.0.0.1:6060: %w", EnvAddr, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	what := "a non-loopback host"
	if host == "" || host == "0.0.0.0" || host == "::" {
		what = "every interface"
	}
	return fmt.Errorf("%s=%q listens on %s; profiles expose process memory and slow the process, "+
		"so only a loopback address is allowed, e.g. 127.0.0.1:6060", EnvAddr, addr, what)
}

// Server serves the profiles on one loopback listener. A nil *Server is profiling turned
// off: its methods do nothing, so a caller wires it the same way whether it is on or not.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen checks addr and starts listening on it; for an empty addr it returns nil, nil.
// The address is checked again after listening, so "localhost" that resolves to
// something other than loopback is refused too.
func Listen(addr string) (*Server, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, err
	}
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", EnvAddr, addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("%s=%q resolved to %s, which is not a loopback address", EnvAddr, addr, ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also serves heap, goroutine, allocs, block, mutex
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No WriteTimeout: a CPU profile or trace answers only after the seconds asked for.
	return &Server{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

// Addr is the address listened on ("" when off): with port 0, the port the system chose.
func (s *Server) Addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves until ctx ends, then closes the listener and any profile being taken, and
// returns nil; it returns an error only if serving failed. Off, it returns nil at once.
func (s *Server) Run(ctx context.Context) error {
	if s == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	defer stop()
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("profiling on %s: %w", s.ln.Addr(), err)
	}
	return nil
}

// Close stops serving; profiles being taken are cut off. It is safe to call more than once.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	// The server closes the listener only once Run has started serving on it.
	err := s.srv.Close()
	if lerr := s.ln.Close(); !errors.Is(lerr, net.ErrClosed) {
		err = errors.Join(err, lerr)
	}
	return err
}

// Package lifecycle is the life of a Loudly service process: signals first, then
// configuration, telemetry, the service itself, and a shutdown that flushes telemetry with
// a fresh timeout (never with the context whose cancellation started the shutdown).
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"loudly/pkg/env"
	"loudly/pkg/profiling"
	"loudly/pkg/telemetry"
)

// Service is what a service package's New returns.
type Service interface {
	Run(ctx context.Context) error
	Close()
}

// Exit codes: 2 for bad configuration, 1 for a failure while starting or running.
const (
	ExitConfig  = 2
	ExitFailure = 1
)

// Program describes a service program for Main.
type Program[C any, S Service] struct {
	Name        string
	Version     string
	DefaultAddr string // HTTP_ADDR's default, for the healthcheck subcommand
	Load        func(getenv func(string) string) (C, error)
	Start       func(context.Context, C, *telemetry.Telemetry) (S, error)
}

// Main runs a service process and returns its exit code. With the single argument
// "healthcheck" it instead asks the running service's /readyz and exits 0 only if it is
// ready: container images without a shell or curl use it as their healthcheck.
func Main[C any, S Service](p Program[C, S]) int {
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		return Healthcheck(os.Getenv("HTTP_ADDR"), p.DefaultAddr, os.Stderr)
	}
	name, version, load, start := p.Name, p.Version, p.Load, p.Start
	// Signals are set up before anything can block, so SIGTERM during start-up still
	// cancels it cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Every bad variable is reported at once: the service's and telemetry's.
	cfg, err := load(os.Getenv)
	r := env.New(os.Getenv)
	tcfg := telemetry.FromEnv(telemetry.Config{ServiceName: name, ServiceVersion: version}, r)
	// PPROF_ADDR: an opt-in profiling endpoint, loopback only, off unless set.
	prof, perr := profiling.Listen(os.Getenv(profiling.EnvAddr))
	if err := errors.Join(err, r.Err(), perr); err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad configuration:\n%v\n", name, err)
		return ExitConfig
	}
	defer prof.Close()
	go func() { _ = prof.Run(ctx) }()
	tel, err := telemetry.Setup(ctx, tcfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: telemetry: %v\n", name, err)
		return ExitConfig
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
		defer cancel()
		_ = tel.Shutdown(sctx)
	}()

	svc, err := start(ctx, cfg, tel)
	if err != nil {
		tel.Logger.Error("start failed", "error", err)
		fmt.Fprintf(os.Stderr, "%s: start: %v\n", name, err)
		return ExitFailure
	}
	defer svc.Close()
	if err := svc.Run(ctx); err != nil {
		tel.Logger.Error("stopped with an error", "error", err)
		return ExitFailure
	}
	tel.Logger.Info("stopped")
	return 0
}

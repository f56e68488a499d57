package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Worker is a background part of a service: a consumer, a relay, a reconciler.
type Worker struct {
	Name string
	Run  func(ctx context.Context) error
}

// ErrWorkerStopped is the error of a worker that returned nil before the shutdown began.
var ErrWorkerStopped = errors.New("stopped before the shutdown, without an error")

// Server is the HTTP side of a service.
type Server interface {
	Serve() error
	Shutdown(ctx context.Context) error
}

// Serve runs the server and the workers until ctx is cancelled or one of them fails. It
// then stops the server first (no new requests), waits up to timeout for requests in
// flight, and cancels the workers and waits for them: consumers finish the messages they
// are handling and release the rest. It returns every error that stopped a part.
//
// A worker runs for the life of the service: one that returns before the shutdown began,
// even with a nil error, has stopped doing its work (a relay that no longer publishes, a
// consumer that no longer consumes) while /healthz says all is well. Serve reports that
// as an error (ErrWorkerStopped) and stops the service, so a supervisor restarts it.
func Serve(ctx context.Context, srv Server, timeout time.Duration, workers ...Worker) error {
	// Workers get their own context: a signal must first stop the HTTP server, and only
	// then the workers, so no request writes an event nobody will relay.
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	var wg sync.WaitGroup
	errs := make(chan error, len(workers)+1)
	for _, w := range workers {
		wg.Go(func() {
			err := w.Run(workCtx)
			if err == nil && workCtx.Err() == nil {
				err = ErrWorkerStopped
			}
			if err != nil {
				errs <- fmt.Errorf("%s: %w", w.Name, err)
			}
		})
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()

	var first error
	select {
	case <-ctx.Done():
	case first = <-serveErr:
	case first = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		first = errors.Join(first, fmt.Errorf("http shutdown: %w", err))
	}
	stopWork()
	wg.Wait()
	close(errs)
	for err := range errs {
		first = errors.Join(first, err)
	}
	return first
}

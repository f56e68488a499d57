package testenv

import (
	"context"
	"sync"
	"testing"
	"time"
)

// RunService runs a service's Run in the background until the test ends, or until the
// returned stop is called (safe to call more than once): stop cancels Run's context,
// fails the test if Run returned an error or did not return within within, and then calls
// closeFn. Tests start services with New themselves, so they can reach inside first.
func RunService(t testing.TB, name string, within time.Duration, runFn func(context.Context) error, closeFn func()) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runFn(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("%s: Run: %v", name, err)
				}
			case <-time.After(within):
				t.Errorf("%s did not stop within %s", name, within)
			}
			closeFn()
		})
	}
	t.Cleanup(stop)
	return stop
}

// Package broker connects a service to NATS JetStream and ensures the streams its events
// travel on, and the dead-letter stream.
package broker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/deadletter"
)

// Connect dials url and returns the connection and its JetStream context, after making
// sure the given event streams and the dead-letter stream exist. The connection reconnects
// forever; disconnections are logged, and /readyz reports them.
func Connect(ctx context.Context, url, name string, logger *slog.Logger, streams []jetstream.StreamConfig) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.Timeout(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats disconnected", "error", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("NATS_URL %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := EnsureStreams(ectx, js, streams); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// EnsureStreams creates or updates the event streams and the dead-letter stream.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, streams []jetstream.StreamConfig) error {
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("jetstream: stream %s: %w", cfg.Name, err)
		}
	}
	if err := deadletter.EnsureStream(ctx, js); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	return nil
}

// ReadyCheck passes while the connection is up.
func ReadyCheck(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (%s)", nc.Status())
		}
		return nil
	}
}

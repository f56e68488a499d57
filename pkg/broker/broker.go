// Package broker connects a service to NATS JetStream and ensures the streams its events
// travel on, and the dead-letter stream.
package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"loudly/pkg/deadletter"
	"loudly/pkg/telemetry"
)

// InboxPrefix is the inbox prefix of the client named name: its replies arrive on
// InboxPrefix(name) + ".>", which is all of _INBOX its NATS user needs to subscribe to.
func InboxPrefix(name string) string { return nats.InboxPrefix + name }

// Connect dials url and returns the connection and its JetStream context, after making
// sure the given event streams and the dead-letter stream exist. The connection reconnects
// forever; disconnections are logged, and /readyz reports them.
//
// It connects with opts.Auth's credentials, named name, and with its own inbox prefix,
// _INBOX.<name> (InboxPrefix): the replies it gets (JetStream API answers, messages
// fetched) arrive under it, so a server can let each client subscribe to its own replies
// only. What the server refuses it (a permissions violation: a publish or a subscription
// its user is not allowed) is logged as an error with the subject and counted in
// loudly.nats.permission_violations — never dropped silently.
//
// url may list several seed servers, comma-separated (a cluster); opts.Replicas is the
// replica count of every stream it ensures. While a cluster elects a leader, JetStream API
// requests go unanswered: ensuring the streams is retried until ctx or ensureTimeout ends.
func Connect(ctx context.Context, url, name string, tel *telemetry.Telemetry, streams []jetstream.StreamConfig, opts Options) (*nats.Conn, jetstream.JetStream, error) {
	logger := tel.Logger
	violations, err := tel.Meter().Int64Counter("loudly.nats.permission_violations", metric.WithUnit("{violation}"),
		metric.WithDescription("Publishes and subscriptions the NATS server refused this client (its user's permissions)."))
	if err != nil {
		return nil, nil, err
	}
	auth, err := opts.Auth.Options()
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(url, append(auth,
		nats.Name(name),
		nats.CustomInboxPrefix(InboxPrefix(name)),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.Timeout(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats disconnected", "error", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if !errors.Is(err, nats.ErrPermissionViolation) {
				args := []any{"error", err}
				if sub != nil {
					args = append(args, "subject", sub.Subject)
				}
				logger.Error("nats error", args...)
				return
			}
			op, subject := describeViolation(err)
			violations.Add(context.Background(), 1, metric.WithAttributes(attribute.String("operation", op)))
			logger.Error("nats permissions violation: the server refused this client", "operation", op, "subject", subject,
				"user", opts.Auth.User, "error", err)
		}),
	)...)
	if err != nil {
		return nil, nil, fmt.Errorf("NATS_URL %s as %s: %w", url, opts.Auth, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	ectx, cancel := context.WithTimeout(ctx, ensureTimeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ectx, 5*time.Second)
		err = EnsureStreamsWith(actx, js, streams, opts)
		acancel()
		if err == nil {
			return nc, js, nil
		}
		if ectx.Err() != nil {
			nc.Close()
			return nil, nil, err
		}
		logger.Warn("ensuring streams failed; retrying", "error", err)
		select {
		case <-ectx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ensureTimeout bounds how long Connect keeps trying to ensure the streams.
const ensureTimeout = 30 * time.Second

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

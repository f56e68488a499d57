package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/deadletter"
	"loudly/pkg/env"
)

// Environment variables of the broker connection and their defaults.
const (
	// URLVar is one NATS URL or, for a cluster, a comma-separated list of seed servers:
	// the client connects to one of them and learns the rest of the cluster from it.
	URLVar     = "NATS_URL"
	DefaultURL = "nats://127.0.0.1:4222"

	// ReplicasVar is how many servers keep a copy of every stream the service ensures.
	// 1 suits a single server; 3 is the setting for a three-node cluster.
	ReplicasVar     = "STREAM_REPLICAS"
	DefaultReplicas = 1
	MaxReplicas     = 5 // JetStream's own limit
)

// Options are the settings of a service's broker that depend on how NATS is deployed.
// The zero value is a single server.
type Options struct {
	// Replicas is the replica count of every stream the service ensures at start-up (its
	// event streams and the dead-letter stream); 0 means
	// DefaultReplicas. It must pass CheckReplicas and be at most the number of JetStream
	// servers in the cluster, or ensuring the streams fails.
	Replicas int

	// Auth is the client's credentials (NATS_USER and NATS_PASSWORD, NATS_CREDS or
	// NATS_NKEY_SEED; ReadAuth).
	Auth Auth
}

// ReadURL reads NATS_URL: one nats:// or tls:// URL, or a comma-separated list of them.
// nats.Connect takes the list as it is.
func ReadURL(r *env.Reader) string {
	return r.URLs(URLVar, DefaultURL, "nats", "tls")
}

// ReadOptions reads STREAM_REPLICAS (default 1): an odd number from 1 to 5, see
// CheckReplicas; and the credentials (ReadAuth).
func ReadOptions(r *env.Reader) Options {
	auth := ReadAuth(r)
	n := r.Int(ReplicasVar, DefaultReplicas, 1, MaxReplicas)
	if err := CheckReplicas(n); err != nil {
		r.Reject(ReplicasVar, strconv.Itoa(n), err.Error())
		return Options{Replicas: DefaultReplicas, Auth: auth}
	}
	return Options{Replicas: n, Auth: auth}
}

// CheckReplicas accepts 1, 3 and 5 replicas. A replicated stream accepts a write once a
// majority of its replicas (a quorum) has stored it, so an even count only adds a copy
// that every quorum must include: 2 replicas stop on the loss of either server, 4
// survive one loss like 3 do, and both pay for the extra copy.
func CheckReplicas(n int) error {
	switch {
	case n < 1 || n > MaxReplicas:
		return fmt.Errorf("want 1 to %d stream replicas, got %d", MaxReplicas, n)
	case n%2 == 0:
		return fmt.Errorf("%d stream replicas: a quorum of %d needs %d of them, so they survive no more failures than %d; use 1, 3 (a three-node cluster) or 5",
			n, n, n/2+1, n-1)
	}
	return nil
}

// WithReplicas returns copies of streams with Replicas set to n (0 means
// DefaultReplicas), leaving the caller's configurations untouched. A service passes its
// event streams through it before ensuring them:
//
//	streams := broker.WithReplicas(events.Streams, opts.Replicas)
func WithReplicas(streams []jetstream.StreamConfig, n int) []jetstream.StreamConfig {
	if n == 0 {
		n = DefaultReplicas
	}
	out := make([]jetstream.StreamConfig, len(streams))
	for i, s := range streams {
		s.Replicas = n
		out[i] = s
	}
	return out
}

// EnsureStreamsWith creates or updates streams and the dead-letter stream, each with
// opts.Replicas replicas, and returns once each of them has a leader.
//
// An existing stream whose replica count differs is updated: JetStream adds or removes
// copies while the stream keeps its messages, so changing STREAM_REPLICAS and restarting
// a service is how a deployment moves between a single server (1) and a cluster (3). The
// stream has no leader for a moment while it changes, and a publish in that moment gets
// no answer at all, which is why this waits for the leader (until ctx ends) rather than
// letting the service's first publish time out. Copying the messages to the new replicas
// goes on in the background. Every service must be given the same count, or each
// start-up scales the streams to its own.
func EnsureStreamsWith(ctx context.Context, js jetstream.JetStream, streams []jetstream.StreamConfig, opts Options) error {
	n := opts.Replicas
	if n == 0 {
		n = DefaultReplicas
	}
	if err := CheckReplicas(n); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	var names []string
	for _, cfg := range WithReplicas(append(slices.Clone(streams), deadletter.StreamConfig), n) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("jetstream: stream %s with %d replicas: %w", cfg.Name, n, err)
		}
		names = append(names, cfg.Name)
	}
	for _, name := range names {
		if err := AwaitLeader(ctx, js, name); err != nil {
			return fmt.Errorf("jetstream: stream %s with %d replicas: %w", name, n, err)
		}
	}
	return nil
}

// AwaitLeader returns once stream reports a leader, or when ctx ends: a stream whose
// replica count just changed has none for a moment, and a publish in that moment gets no
// answer at all.
func AwaitLeader(ctx context.Context, js jetstream.JetStream, stream string) error {
	for {
		s, err := js.Stream(ctx, stream)
		if err == nil {
			if c := s.CachedInfo().Cluster; c == nil || c.Leader != "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return fmt.Errorf("no leader: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StreamInfoTimeout bounds how long StreamsReadyCheck waits for a stream to answer when
// the caller's context has no earlier deadline.
const StreamInfoTimeout = 2 * time.Second

// StreamsReadyCheck is a readiness check that passes while every named stream answers
// and has a leader. A replicated stream without a leader has lost its quorum: it
// accepts no publish and delivers nothing, although the connection to NATS is up. The
// streams are asked at the same time, so one that does not answer does not use up the
// others' time.
func StreamsReadyCheck(js jetstream.JetStream, names ...string) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, StreamInfoTimeout)
		defer cancel()
		errs := make([]error, len(names))
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Go(func() { errs[i] = streamReady(ctx, js, name) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
}

func streamReady(ctx context.Context, js jetstream.JetStream, name string) error {
	s, err := js.Stream(ctx, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("stream %s does not exist", name)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("stream %s did not answer: it has no leader (too few of its replicas are reachable for a quorum) or JetStream is unavailable", name)
	case errors.Is(err, nats.ErrNoResponders):
		return fmt.Errorf("stream %s did not answer: no JetStream server is reachable", name)
	case err != nil:
		return fmt.Errorf("stream %s: %w", name, err)
	}
	info := s.CachedInfo()
	c, want := info.Cluster, info.Config.Replicas
	if c == nil || want <= 1 {
		return nil
	}
	if c.Leader == "" {
		return fmt.Errorf("stream %s has no leader: too few of its %d replicas are reachable for a quorum", name, want)
	}
	// A leader notices that it lost its followers only after about ten seconds without
	// hearing from them; followers whose servers the cluster already knows to be down
	// (a clean shutdown says so at once) count against the quorum before that.
	live, offline := 1, []string{}
	for _, p := range c.Replicas {
		if p.Offline {
			offline = append(offline, p.Name)
		} else {
			live++
		}
	}
	if quorum := want/2 + 1; live < quorum {
		return fmt.Errorf("stream %s has lost its quorum: %d of %d replicas reachable, %d needed (leader %s; offline: %s)",
			name, live, want, quorum, c.Leader, strings.Join(offline, ", "))
	}
	return nil
}

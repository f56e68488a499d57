package faults

import (
	"context"
	"testing"
	"time"

	"loudly/internal/testenv"
	"loudly/pkg/telemetry/telemetrytest"
)

// TestBucket_DrillsKeepTheReplicasTheServicesChose guards the cluster setting: the drill
// commands and the watchers open the bucket; only a service's start-up configures it.
func TestBucket_DrillsKeepTheReplicasTheServicesChose(t *testing.T) {
	c := testenv.StartNATSCluster(t)
	js := testenv.JetStream(t, c.URLs())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	replicas := func() int {
		t.Helper()
		s, err := js.Stream(ctx, "KV_"+Bucket)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config.Replicas
	}

	t.Run("opening a missing bucket creates it with one replica", func(t *testing.T) {
		kv, err := EnsureBucket(ctx, js)
		if err != nil {
			t.Fatal(err)
		}
		if got := replicas(); got != 1 {
			t.Errorf("created with %d replicas, want 1", got)
		}
		if st, err := kv.Status(ctx); err != nil || st.History() != 1 {
			t.Errorf("history = %v, %v; want 1", st, err)
		}
	})

	const latency = "db-latency" // any fault: the mechanism knows no drill
	t.Run("a service scales it to three replicas, and the drills leave it so", func(t *testing.T) {
		if _, err := ConfigureBucket(ctx, js, 3); err != nil {
			t.Fatal(err)
		}
		if got := replicas(); got != 3 {
			t.Fatalf("configured with %d replicas, want 3", got)
		}
		// The bucket has no leader for a moment while it scales, and a Put then gets no
		// answer; broker.EnsureStreamsWith waits for that at start-up.
		testenv.WaitFor(t, testenv.ClusterTimeout, "the bucket to report a leader", func() bool {
			s, err := js.Stream(ctx, "KV_"+Bucket)
			return err == nil && s.CachedInfo().Cluster.Leader != ""
		})
		if _, err := Start(ctx, js, latency, "", 0.5, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := Watch(ctx, js, telemetrytest.New(t, "inventory").Meter(), "inventory", []string{latency}); err != nil {
			t.Fatal(err)
		}
		if active, err := List(ctx, js); err != nil || len(active) != 1 {
			t.Fatalf("List = %v, %v; want the started fault", active, err)
		}
		if err := Stop(ctx, js, latency); err != nil {
			t.Fatal(err)
		}
		if got := replicas(); got != 3 {
			t.Errorf("after a drill the bucket has %d replicas, want the 3 the service configured", got)
		}
	})
}

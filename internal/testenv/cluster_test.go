package testenv

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestNATSCluster_FormsAndReplicatesAnR3Stream(t *testing.T) {
	t.Parallel()
	c := StartNATSCluster(t)

	urls := strings.Split(c.URLs(), ",")
	if len(urls) != ClusterSize {
		t.Fatalf("URLs() = %q, want %d comma-separated URLs", c.URLs(), ClusterSize)
	}
	for i, u := range urls {
		if u != c.URL(i) {
			t.Errorf("URLs()[%d] = %s, want URL(%d) = %s", i, u, i, c.URL(i))
		}
		if c.Index(c.Name(i)) != i {
			t.Errorf("Index(Name(%d)) = %d", i, c.Index(c.Name(i)))
		}
	}
	if c.MetaLeader() < 0 {
		t.Error("no meta leader after StartNATSCluster")
	}

	js := clusterJetStream(t, c.URLs())
	stream := createR3Stream(t, js)
	for i := range 10 {
		publishAcked(t, js, stream, fmt.Sprintf("m%d", i))
	}
	c.WaitStreamCurrent(stream)

	info := streamInfo(t, js, stream)
	if info.Cluster == nil || len(info.Cluster.Replicas) != ClusterSize-1 {
		t.Fatalf("stream cluster info = %+v, want a leader and %d followers", info.Cluster, ClusterSize-1)
	}
	if got := c.StreamLeader(stream); got < 0 || c.Name(got) != info.Cluster.Leader {
		t.Errorf("StreamLeader = %d, the server reports leader %q", got, info.Cluster.Leader)
	}
	for i := range ClusterSize {
		if seq, ok := c.LastSeq(i, stream); !ok || seq != 10 {
			t.Errorf("node %s holds last sequence %d (copy: %v), want 10", c.Name(i), seq, ok)
		}
	}
}

func TestNATSCluster_StoppingALeaderElectsAnotherAndTheNodeCatchesUpOnRestart(t *testing.T) {
	t.Parallel()
	c := StartNATSCluster(t)
	js := clusterJetStream(t, c.URLs())
	stream := createR3Stream(t, js)
	for i := range 5 {
		publishAcked(t, js, stream, fmt.Sprintf("before-%d", i))
	}

	t.Run("stream leader", func(t *testing.T) {
		old := c.WaitStreamLeader(stream)
		c.Stop(old)
		if _, ok := c.LastSeq(old, stream); ok {
			t.Fatal("a stopped node still reports its copy of the stream")
		}
		if now := c.WaitStreamLeader(stream); now == old {
			t.Fatalf("node %s still leads after it was stopped", c.Name(old))
		}
		for i := range 5 {
			publishAcked(t, js, stream, fmt.Sprintf("after-%d", i))
		}
		c.Start(old)
		c.WaitStreamCurrent(stream)
		if seq, _ := c.LastSeq(old, stream); seq != 10 {
			t.Errorf("restarted node %s holds last sequence %d, want 10", c.Name(old), seq)
		}
	})

	t.Run("meta leader", func(t *testing.T) {
		old := c.WaitReady()
		c.Stop(old)
		if now := c.WaitReady(); now == old {
			t.Fatalf("node %s still leads the meta group after it was stopped", c.Name(old))
		}
		// Only the meta leader places new streams: this proves the new one works.
		other := createR3Stream(t, js)
		publishAcked(t, js, other, "placed-by-the-new-meta-leader")
		c.Start(old)
		c.WaitReady()
		c.WaitStreamCurrent(other)
		if seq, ok := c.LastSeq(old, other); !ok || seq != 1 {
			t.Errorf("restarted node %s holds last sequence %d of a stream created while it was down (copy: %v), want 1", c.Name(old), seq, ok)
		}
	})
}

func TestNATSCluster_IsolatedLeaderIsReplacedAndCatchesUpWhenHealed(t *testing.T) {
	t.Parallel()
	c := StartNATSCluster(t)
	js := clusterJetStream(t, c.URLs())
	stream := createR3Stream(t, js)
	for i := range 5 {
		publishAcked(t, js, stream, fmt.Sprintf("before-%d", i))
	}
	c.WaitStreamCurrent(stream)

	old := c.WaitStreamLeader(stream)
	c.Isolate(old)
	if nc, err := nats.Connect(c.URL(old), nats.NoReconnect(), nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("a client could connect to an isolated node")
	}
	if now := c.WaitStreamLeader(stream); now == old {
		t.Fatalf("isolated node %s is still counted as leader", c.Name(old))
	}
	for i := range 5 {
		publishAcked(t, js, stream, fmt.Sprintf("during-%d", i))
	}
	if seq, _ := c.LastSeq(old, stream); seq != 5 {
		t.Fatalf("isolated node %s holds last sequence %d, want 5: it was not cut off", c.Name(old), seq)
	}

	c.Heal(old)
	c.WaitReady()
	c.WaitStreamCurrent(stream)
	if seq, _ := c.LastSeq(old, stream); seq != 10 {
		t.Errorf("healed node %s holds last sequence %d, want 10", c.Name(old), seq)
	}
	if nc, err := nats.Connect(c.URL(old), nats.NoReconnect(), nats.Timeout(time.Second)); err != nil {
		t.Errorf("a client cannot connect to the healed node: %v", err)
	} else {
		nc.Close()
	}
}

func TestNATSCluster_PartitionedNodeAcksNothingUntilHealed(t *testing.T) {
	t.Parallel()
	c := StartNATSCluster(t)
	js := clusterJetStream(t, c.URLs())
	stream := createR3Stream(t, js)
	for i := range 5 {
		publishAcked(t, js, stream, fmt.Sprintf("before-%d", i))
	}
	c.WaitStreamCurrent(stream)

	old := c.WaitStreamLeader(stream)
	var majority []string
	for i := range ClusterSize {
		if i != old {
			majority = append(majority, c.URL(i))
		}
	}
	minorityJS := clusterJetStream(t, c.URL(old))
	majorityJS := clusterJetStream(t, strings.Join(majority, ","))

	c.Partition(old)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := minorityJS.Publish(ctx, stream+".x", []byte("minority"), jetstream.WithMsgID("minority"))
	cancel()
	if err == nil {
		t.Fatal("a node cut off from its peers acknowledged a publish to an R3 stream")
	}
	if now := c.WaitStreamLeader(stream); now == old {
		t.Fatalf("partitioned node %s is still counted as leader", c.Name(old))
	}
	for i := range 3 {
		publishAcked(t, majorityJS, stream, fmt.Sprintf("majority-%d", i))
	}

	c.Heal(old)
	c.WaitReady()
	c.WaitStreamCurrent(stream)
	for i := range ClusterSize {
		if seq, _ := c.LastSeq(i, stream); seq != 8 {
			t.Errorf("node %s holds last sequence %d, want 8 (5 before, 3 on the majority, not the unacknowledged one)", c.Name(i), seq)
		}
	}
	// The client that stayed with the node is served again once the node is back.
	publishAcked(t, minorityJS, stream, "after-heal")
}

// clusterJetStream connects as a service would, reconnecting for ever.
func clusterJetStream(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	return JetStream(t, urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
}

func createR3Stream(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	name := Prefix(t) + "_ORDERS"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage, Replicas: 3,
	})
	if err != nil {
		t.Fatalf("create R3 stream %s: %v", name, err)
	}
	return name
}

// publishAcked publishes body until the stream acknowledges it, as a relay retries: right
// after a failover the client may still be reconnecting. The message id makes a retry of
// a publish that was stored but not acknowledged a duplicate, not a second message.
func publishAcked(t *testing.T, js jetstream.JetStream, stream, body string) {
	t.Helper()
	deadline := time.Now().Add(ClusterTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.Publish(ctx, stream+".x", []byte(body), jetstream.WithMsgID(body))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %q to %s: not acknowledged within %s: %v", body, stream, ClusterTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func streamInfo(t *testing.T, js jetstream.JetStream, stream string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

package broker_test

import (
	"context"

	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/internal/testenv"
	"loudly/pkg/broker"
	"loudly/pkg/deadletter"
	"loudly/pkg/env"
	"loudly/pkg/telemetry/telemetrytest"
)

func TestReadURL(t *testing.T) {
	for _, tc := range []struct {
		name, value, want, problem string
	}{
		{name: "unset is the local server", value: "", want: broker.DefaultURL},
		{name: "one URL", value: "nats://n1:4222", want: "nats://n1:4222"},
		{name: "seed servers of a cluster", value: "nats://n1:4222, nats://n2:4222 ,tls://n3:4222", want: "nats://n1:4222,nats://n2:4222,tls://n3:4222"},
		{name: "a wrong scheme in the list", value: "nats://n1:4222,http://n2:4222", problem: `scheme of "http://n2:4222"`},
		{name: "an empty entry", value: "nats://n1:4222,,nats://n2:4222", problem: "empty entry"},
		{name: "a host without a scheme", value: "n1:4222", problem: "not a URL with a host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := env.New(func(name string) string { return map[string]string{broker.URLVar: tc.value}[name] })
			got := broker.ReadURL(r)
			err := r.Err()
			if tc.problem == "" {
				if err != nil || got != tc.want {
					t.Errorf("ReadURL(%q) = %q, %v; want %q", tc.value, got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.problem) || !strings.Contains(err.Error(), broker.URLVar) {
				t.Errorf("ReadURL(%q) error = %v, want one naming %s and %q", tc.value, err, broker.URLVar, tc.problem)
			}
		})
	}
}

func TestReadOptions(t *testing.T) {
	for _, tc := range []struct {
		value   string
		want    int
		problem string // "" when valid
	}{
		{value: "", want: 1},
		{value: "1", want: 1},
		{value: "3", want: 3},
		{value: "5", want: 5},
		{value: "2", problem: "quorum of 2 needs 2"},
		{value: "4", problem: "survive no more failures than 3"},
		{value: "0", problem: "from 1 to 5"},
		{value: "7", problem: "from 1 to 5"},
		{value: "three", problem: "from 1 to 5"},
	} {
		t.Run("STREAM_REPLICAS="+tc.value, func(t *testing.T) {
			r := env.New(func(name string) string { return map[string]string{broker.ReplicasVar: tc.value}[name] })
			got := broker.ReadOptions(r)
			err := r.Err()
			if tc.problem == "" {
				if err != nil || got.Replicas != tc.want {
					t.Errorf("ReadOptions = %+v, %v; want Replicas %d", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.problem) || !strings.Contains(err.Error(), broker.ReplicasVar) {
				t.Errorf("ReadOptions error = %v, want one naming %s and %q", err, broker.ReplicasVar, tc.problem)
			}
		})
	}
}

func TestWithReplicas_CopiesTheConfigurations(t *testing.T) {
	in := []jetstream.StreamConfig{{Name: "A"}, {Name: "B", Replicas: 5}}
	out := broker.WithReplicas(in, 3)
	for i, s := range out {
		if s.Replicas != 3 || s.Name != in[i].Name {
			t.Errorf("WithReplicas[%d] = %s with %d replicas, want %s with 3", i, s.Name, s.Replicas, in[i].Name)
		}
	}
	if in[0].Replicas != 0 || in[1].Replicas != 5 {
		t.Errorf("WithReplicas changed its input: %+v", in)
	}
	if got := broker.WithReplicas(in, 0); got[0].Replicas != broker.DefaultReplicas {
		t.Errorf("WithReplicas(0) gives %d replicas, want the default %d", got[0].Replicas, broker.DefaultReplicas)
	}
}

// TestConnect_SeedList proves a service given several seed servers in NATS_URL starts
// while the first of them is down, and stays connected when its node goes away.
func TestConnect_SeedList(t *testing.T) {
	c := testenv.StartNATSCluster(t)
	c.Stop(0)
	c.WaitReady()
	if nc, err := nats.Connect(c.URL(0), nats.NoReconnect(), nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatal("the stopped seed accepted a connection")
	}
	nc, _ := connect(t, strings.ReplaceAll(c.URLs(), ",", ", "))
	node := c.Index(nc.ConnectedServerName())
	if node <= 0 {
		t.Fatalf("connected to %q, want one of the running nodes", nc.ConnectedServerName())
	}
	c.Start(0)
	c.WaitReady()
	c.Stop(node)
	testenv.WaitFor(t, testenv.ClusterTimeout, "the client to reconnect to another node", func() bool {
		return nc.IsConnected() && c.Index(nc.ConnectedServerName()) != node
	})
}

func TestEnsureStreamsWith_ScalesStreamsUpAndDown(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartNATSCluster(t)
	js := testenv.JetStream(t, c.URLs())
	events := []jetstream.StreamConfig{{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage}}
	all := []string{"EVENTS", deadletter.Stream}

	if err := broker.EnsureStreamsWith(ctx, js, events, broker.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range all {
		if got := streamInfo(t, js, name).Config.Replicas; got != 1 {
			t.Errorf("stream %s has %d replicas with the zero Options, want 1", name, got)
		}
	}
	published := uint64(0)
	for range 3 {
		if _, err := js.Publish(ctx, "events.x", []byte("kept")); err != nil {
			t.Fatal(err)
		}
		published++
	}

	for _, n := range []int{3, 1} {
		if err := broker.EnsureStreamsWith(ctx, js, events, broker.Options{Replicas: n}); err != nil {
			t.Fatalf("scale to %d replicas: %v", n, err)
		}
		// A publish right after the change is answered: the stream has its leader back.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Publish(pctx, "events.x", []byte("right after scaling"))
		cancel()
		if err != nil {
			t.Fatalf("publish right after scaling to %d replicas: %v", n, err)
		}
		published++
		for _, name := range all {
			testenv.WaitFor(t, testenv.ClusterTimeout, "stream "+name+" to have its copies on exactly the right nodes", func() bool {
				return copies(c, name) == n
			})
			c.WaitStreamCurrent(name)
			info := streamInfo(t, js, name)
			if info.Config.Replicas != n || len(info.Cluster.Replicas) != n-1 {
				t.Errorf("stream %s: configured %d replicas, %d followers; want %d and %d", name, info.Config.Replicas, len(info.Cluster.Replicas), n, n-1)
			}
		}
		if msgs := streamInfo(t, js, "EVENTS").State.Msgs; msgs != published {
			t.Errorf("EVENTS holds %d messages after scaling to %d replicas, want the %d published", msgs, n, published)
		}
	}
	if events[0].Replicas != 0 {
		t.Errorf("EnsureStreamsWith changed the caller's configuration: %d replicas", events[0].Replicas)
	}
}

func TestEnsureStreamsWith_RefusesWhatTheClusterCannotHold(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartNATSCluster(t)
	js := testenv.JetStream(t, c.URLs())
	events := []jetstream.StreamConfig{{Name: "EVENTS", Subjects: []string{"events.>"}}}

	err := broker.EnsureStreamsWith(ctx, js, events, broker.Options{Replicas: 5})
	if err == nil || !strings.Contains(err.Error(), "EVENTS with 5 replicas") {
		t.Errorf("5 replicas on 3 servers: error = %v, want one naming the stream and the replica count", err)
	}
	err = broker.EnsureStreamsWith(ctx, js, events, broker.Options{Replicas: 2})
	if err == nil || !strings.Contains(err.Error(), "quorum") {
		t.Errorf("2 replicas: error = %v, want one explaining the quorum", err)
	}
	if _, err := js.Stream(ctx, "EVENTS"); err == nil {
		t.Error("a refused replica count still created the stream")
	}
}

func TestStreamsReadyCheck(t *testing.T) {
	ctx := context.Background()
	c := testenv.StartNATSCluster(t)
	js := testenv.JetStream(t, c.URLs())
	events := []jetstream.StreamConfig{{Name: "EVENTS", Subjects: []string{"events.>"}}}
	if err := broker.EnsureStreamsWith(ctx, js, events, broker.Options{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	check := broker.StreamsReadyCheck(js, "EVENTS", deadletter.Stream)

	if err := check(ctx); err != nil {
		t.Fatalf("check fails on a healthy cluster: %v", err)
	}
	if err := broker.StreamsReadyCheck(js, "MISSING")(ctx); err == nil || !strings.Contains(err.Error(), "stream MISSING does not exist") {
		t.Errorf("missing stream: %v", err)
	}

	// Two of three nodes gone: every R3 stream has lost its quorum.
	stay := c.StreamLeader("EVENTS")
	for i := range testenv.ClusterSize {
		if i != stay {
			c.Stop(i)
		}
	}
	var err error
	testenv.WaitFor(t, testenv.ClusterTimeout, "the check to fail for both streams", func() bool {
		err = check(ctx)
		return err != nil && strings.Contains(err.Error(), "stream EVENTS") && strings.Contains(err.Error(), "stream "+deadletter.Stream)
	})
	if !strings.Contains(err.Error(), "quorum") {
		t.Errorf("check error %q does not explain the lost quorum", err)
	}
	t.Logf("readiness without a quorum: %v", err)
	start := time.Now()
	check(ctx)
	if took := time.Since(start); took > broker.StreamInfoTimeout+time.Second {
		t.Errorf("a failing check took %s, want at most about %s for all streams together", took, broker.StreamInfoTimeout)
	}

	for i := range testenv.ClusterSize {
		if i != stay {
			c.Start(i)
		}
	}
	c.WaitStreamLeader("EVENTS")
	testenv.WaitFor(t, testenv.ClusterTimeout, "the check to pass again", func() bool { return check(ctx) == nil })
}

// connect is the one place these tests call broker.Connect.
func connect(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, js, err := broker.Connect(ctx, url, "broker-test", telemetrytest.New(t, "broker-test").Telemetry, nil, broker.Options{})
	if err != nil {
		t.Fatalf("broker.Connect(%q): %v", url, err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return info
}

// copies counts the nodes that hold a copy of stream.
func copies(c *testenv.NATSCluster, stream string) int {
	return len(slices.DeleteFunc([]int{0, 1, 2}, func(i int) bool {
		_, ok := c.LastSeq(i, stream)
		return !ok
	}))
}

func TestReadAuth_OneKindOfCredentials(t *testing.T) {
	seed := t.TempDir() + "/seed.nk"
	if err := os.WriteFile(seed, []byte("SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		want    broker.Auth
		problem string
	}{
		{name: "none is anonymous", vars: nil},
		{name: "user and password", vars: map[string]string{"NATS_USER": "order", "NATS_PASSWORD": "s3cret"}, want: broker.Auth{User: "order", Password: "s3cret"}},
		{name: "an nkey seed file", vars: map[string]string{"NATS_NKEY_SEED": seed}, want: broker.Auth{NkeySeedFile: seed}},
		{name: "a user without a password", vars: map[string]string{"NATS_USER": "order"}, problem: "NATS_USER"},
		{name: "a password without a user", vars: map[string]string{"NATS_PASSWORD": "s3cret"}, problem: "NATS_PASSWORD"},
		{name: "a creds file that is not there", vars: map[string]string{"NATS_CREDS": "/nonexistent.creds"}, problem: "NATS_CREDS"},
		{name: "two kinds", vars: map[string]string{"NATS_USER": "order", "NATS_PASSWORD": "s3cret", "NATS_NKEY_SEED": seed}, problem: "one kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := env.New(func(k string) string { return tc.vars[k] })
			got := broker.ReadAuth(r)
			err := r.Err()
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Errorf("error %v, want one about %s", err, tc.problem)
				}
				if err != nil && strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error shows the password: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ReadAuth = %+v, %v; want %+v", got, err, tc.want)
			}
			if _, err := got.Options(); err != nil {
				t.Errorf("Options: %v", err)
			}
		})
	}
}

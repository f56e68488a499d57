package testenv

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterSize is the number of nodes StartNATSCluster runs: the smallest cluster in which
// an R3 stream survives losing one node.
const ClusterSize = 3

// ClusterTimeout bounds every Wait method of NATSCluster. A JetStream election starts
// only after a follower has missed heartbeats for 4 to 9 seconds (the server's fixed
// election timeout), and the tests share two cores, so this leaves room for an election
// after a node is cut off without letting a broken cluster hang a test for long.
const ClusterTimeout = 30 * time.Second

// NATSCluster is three embedded JetStream servers joined by routes, each storing its
// streams in a directory of its own, for tests of what the services do when a node of a
// clustered broker stops, restarts or is cut off from the others.
//
// Every connection into the cluster passes through a Proxy, so a node can be cut off
// without stopping it: clients reach node i through its client proxy, and node i
// reaches node j through the route proxy of that pair, which only the two of them use.
// Clients learn of the other nodes' client proxies by gossip. Peers learn of each other
// by gossip too and may dial the route address a node advertises when they have no route
// to it yet; that address leads nowhere (a proxy that stays cut), because a connection
// through it could not be told apart from, and so cut with, the pair's own route.
//
// Nodes are numbered from 0. Methods call t.Fatal and so belong on the test's goroutine.
type NATSCluster struct {
	t     testing.TB
	nodes []*clusterNode
}

type clusterNode struct {
	name        string
	storeDir    string
	clientPort  int // the real listeners, fixed at the first start so a restart
	clusterPort int // finds the same ones (behind the same proxies)

	client     *Proxy   // what clients dial
	advertised *Proxy   // the route address the node advertises: always cut, see NATSCluster
	routeTo    []*Proxy // routeTo[j]: this node's configured route to node j (nil for itself)

	mu       sync.Mutex
	srv      *server.Server
	logs     *errorLog
	isolated bool // cut off from its peers (and, see cutClients, maybe from clients)
}

// StartNATSCluster starts a three-node JetStream cluster for this test, waits until it
// has formed and elected a meta leader, and stops it when the test ends.
func StartNATSCluster(t testing.TB) *NATSCluster {
	t.Helper()
	c := &NATSCluster{t: t}
	for i := range ClusterSize {
		n := &clusterNode{
			name:        fmt.Sprintf("n%d", i+1),
			storeDir:    t.TempDir(),
			clientPort:  server.RANDOM_PORT,
			clusterPort: server.RANDOM_PORT,
		}
		// The proxies lead nowhere until their node has started and has ports.
		n.client = NewProxy(t, "")
		n.advertised = NewProxy(t, "")
		n.advertised.Cut()
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		n.routeTo = make([]*Proxy, ClusterSize)
		for j, peer := range c.nodes {
			if peer != n {
				n.routeTo[j] = NewProxy(t, "")
			}
		}
	}
	// Registered after the proxies, so it runs before their cleanup: the servers say
	// goodbye over working connections.
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Stop(i)
		}
	})
	// Each node takes ports from the kernel at its first start and keeps them, which
	// cannot collide with another test the way picking "free" ports in advance can.
	// A node's first attempts to reach a peer that has not started yet fail; the peer
	// reaches it instead as soon as it starts.
	for i := range c.nodes {
		c.launch(i)
	}
	c.WaitReady()
	return c
}

// URLs is the comma-separated list of every node's client URL, the form NATS_URL takes
// for a cluster: a client tries them in turn and moves to another when its node fails.
func (c *NATSCluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// URL is node i's client URL alone, for a client that must stay on that node. It stays
// the same across Stop and Start.
func (c *NATSCluster) URL(i int) string { return "nats://" + c.node(i).client.Addr() }

// Name is node i's server name, as JetStream reports it (for example as a stream's
// Cluster.Leader).
func (c *NATSCluster) Name(i int) string { return c.node(i).name }

// Index returns the number of the node called name, or -1.
func (c *NATSCluster) Index(name string) int {
	for i, n := range c.nodes {
		if n.name == name {
			return i
		}
	}
	return -1
}

// Stop shuts node i down cleanly, as a rolling restart would: it hands the leadership of
// its streams and of the meta group to other nodes before it goes. Stopping a stopped
// node does nothing.
func (c *NATSCluster) Stop(i int) {
	n := c.node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// Start starts node i again on the ports and store directory of its first start, so it
// rejoins the cluster, recovers its streams from disk and catches up with what it missed.
// It returns once the node accepts connections; use WaitReady or WaitStreamCurrent to
// wait for it to have caught up.
func (c *NATSCluster) Start(i int) {
	c.t.Helper()
	c.launch(i)
}

// Restart stops node i and starts it again.
func (c *NATSCluster) Restart(i int) {
	c.t.Helper()
	c.Stop(i)
	c.launch(i)
}

// Isolate cuts node i off from its peers and from every client, as when the network of
// its machine fails: open connections are reset and new ones refused, while the node
// itself keeps running and believes what it believed, until Heal. Clients given URLs
// move to the other nodes.
func (c *NATSCluster) Isolate(i int) { c.cut(i, true) }

// Partition cuts node i off from its peers only: clients connected to it stay connected
// to a node in the minority, which cannot commit anything, as in a network partition with
// a service on the wrong side.
func (c *NATSCluster) Partition(i int) { c.cut(i, false) }

// Heal undoes Isolate or Partition: node i's routes reconnect within about a second and
// it catches up with the others.
func (c *NATSCluster) Heal(i int) {
	n := c.node(i)
	n.mu.Lock()
	n.isolated = false
	n.mu.Unlock()
	for _, p := range c.proxiesOf(i) {
		p.Restore()
	}
	n.client.Restore()
}

func (c *NATSCluster) cut(i int, cutClients bool) {
	n := c.node(i)
	n.mu.Lock()
	n.isolated = true
	n.mu.Unlock()
	for _, p := range c.proxiesOf(i) {
		p.Cut()
	}
	if cutClients {
		n.client.Cut()
	}
}

// proxiesOf returns every proxy a route to or from node i can pass through.
func (c *NATSCluster) proxiesOf(i int) []*Proxy {
	n := c.node(i)
	var ps []*Proxy
	for j, peer := range c.nodes {
		if j != i {
			ps = append(ps, n.routeTo[j], peer.routeTo[i])
		}
	}
	return ps
}

// MetaLeader returns the node that leads the JetStream meta group (the one that places
// streams and consumers), or -1 if no reachable node does. An isolated node that still
// believes it leads is not counted.
func (c *NATSCluster) MetaLeader() int {
	leader := -1
	for i, s := range c.reachable() {
		if s.JetStreamIsLeader() {
			if leader >= 0 {
				return -1 // two claim it: an election is in progress
			}
			leader = i
		}
	}
	return leader
}

// StreamLeader returns the node that leads stream (in the global account), or -1 if no
// reachable node does.
func (c *NATSCluster) StreamLeader(stream string) int {
	leader := -1
	for i, s := range c.reachable() {
		if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			if leader >= 0 {
				return -1
			}
			leader = i
		}
	}
	return leader
}

// LastSeq returns the last sequence of node i's own copy of stream, and false if node i
// is not running or holds no copy. It reads the node directly, not through the stream
// leader, so it shows whether that node has caught up.
func (c *NATSCluster) LastSeq(i int, stream string) (uint64, bool) {
	s := c.server(i)
	if s == nil {
		return 0, false
	}
	d, ok := localStream(s, stream)
	return d.State.LastSeq, ok
}

// WaitReady waits until every reachable node has a route to every other reachable node,
// they all follow the same meta leader, and that leader knows the stopped nodes are
// offline: until the cluster can create streams. It returns the meta leader.
func (c *NATSCluster) WaitReady() int {
	c.t.Helper()
	leader := -1
	c.wait("the cluster to form with a meta leader", func() bool {
		leader = -1
		nodes := c.reachable()
		for _, s := range nodes {
			if s.NumRemotes() < len(nodes)-1 || !s.JetStreamIsCurrent() {
				return false
			}
		}
		m := c.MetaLeader()
		if m < 0 {
			return false
		}
		for _, s := range nodes {
			jsz, err := s.Jsz(&server.JSzOptions{})
			if err != nil || jsz.Meta == nil || jsz.Meta.Leader != c.Name(m) {
				return false
			}
		}
		if srv, ok := nodes[m]; !ok || !c.stoppedSeenOffline(srv) {
			return false
		}
		leader = m
		return true
	})
	return leader
}

// stoppedSeenOffline reports whether the meta leader knows every stopped node is offline.
// Until it does, it may place a new stream's replica on a stopped node, and creating the
// stream waits for that node until it times out (TestConnect_SeedList did, once in a few
// runs on a loaded machine: a stream created right after a node's shutdown).
func (c *NATSCluster) stoppedSeenOffline(leader *server.Server) bool {
	stopped := map[string]bool{}
	for i, n := range c.nodes {
		n.mu.Lock()
		if n.srv == nil {
			stopped[c.Name(i)] = true
		}
		n.mu.Unlock()
	}
	if len(stopped) == 0 {
		return true
	}
	jsz, err := leader.Jsz(&server.JSzOptions{})
	if err != nil || jsz.Meta == nil {
		return false
	}
	for _, p := range jsz.Meta.Replicas {
		if stopped[p.Name] && !p.Offline {
			return false
		}
	}
	return true
}

// WaitMetaLeader waits until a reachable node leads the meta group and returns it.
func (c *NATSCluster) WaitMetaLeader() int {
	c.t.Helper()
	leader := -1
	c.wait("a meta leader", func() bool { leader = c.MetaLeader(); return leader >= 0 })
	return leader
}

// WaitStreamLeader waits until a reachable node leads stream and returns it.
func (c *NATSCluster) WaitStreamLeader(stream string) int {
	c.t.Helper()
	leader := -1
	c.wait("a leader for stream "+stream, func() bool { leader = c.StreamLeader(stream); return leader >= 0 })
	return leader
}

// WaitStreamCurrent waits until stream has a leader and every reachable node holding a
// copy of it is current and has the leader's last sequence: nothing acknowledged is
// missing anywhere a later leader could come from.
func (c *NATSCluster) WaitStreamCurrent(stream string) {
	c.t.Helper()
	c.wait("every replica of stream "+stream+" to catch up with its leader", func() bool {
		leader := c.StreamLeader(stream)
		if leader < 0 {
			return false
		}
		want, ok := c.LastSeq(leader, stream)
		if !ok {
			return false
		}
		for _, s := range c.reachable() {
			d, ok := localStream(s, stream)
			if !ok {
				continue // not a replica of this stream
			}
			if d.State.LastSeq != want || !s.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
				return false
			}
		}
		return true
	})
}

// wait is WaitFor with the cluster's timeout and, on failure, what the servers logged.
func (c *NATSCluster) wait(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(ClusterTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s; %s", ClusterTimeout, what, c.describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describe says which nodes run and what they last complained about.
func (c *NATSCluster) describe() string {
	var b strings.Builder
	for _, n := range c.nodes {
		n.mu.Lock()
		state := "stopped"
		if n.srv != nil {
			state = fmt.Sprintf("running, %d peers, JetStream current %v%s", n.srv.NumRemotes(), n.srv.JetStreamIsCurrent(), metaView(n.srv))
		}
		if n.isolated {
			state += ", cut off"
		}
		fmt.Fprintf(&b, "node %s (%s): %s; ", n.name, state, n.logs.tail(3))
		n.mu.Unlock()
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// metaView is what a server believes of the meta group: its leader and which replicas
// it holds offline, for a failed wait's message.
func metaView(s *server.Server) string {
	jsz, err := s.Jsz(&server.JSzOptions{})
	if err != nil || jsz.Meta == nil {
		return ", no meta group"
	}
	var offline []string
	for _, p := range jsz.Meta.Replicas {
		if p.Offline {
			offline = append(offline, p.Name)
		}
	}
	return fmt.Sprintf(", meta leader %q, offline %v", jsz.Meta.Leader, offline)
}

// reachable maps node numbers to the servers of the nodes that run and are not cut off.
func (c *NATSCluster) reachable() map[int]*server.Server {
	out := map[int]*server.Server{}
	for i, n := range c.nodes {
		n.mu.Lock()
		if n.srv != nil && !n.isolated {
			out[i] = n.srv
		}
		n.mu.Unlock()
	}
	return out
}

func (c *NATSCluster) server(i int) *server.Server {
	n := c.node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

func (c *NATSCluster) node(i int) *clusterNode {
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("testenv: no cluster node %d (nodes are 0..%d)", i, len(c.nodes)-1)
	}
	return c.nodes[i]
}

// launch starts node i's server and waits until it accepts connections.
func (c *NATSCluster) launch(i int) {
	c.t.Helper()
	n := c.node(i)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		c.t.Fatalf("testenv: cluster node %s is already running", n.name)
	}
	var routes []*url.URL
	for j, p := range n.routeTo {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats", Host: p.Addr()})
		}
	}
	opts := &server.Options{
		ServerName:      n.name,
		Host:            "127.0.0.1",
		Port:            n.clientPort,
		ClientAdvertise: n.client.Addr(),
		JetStream:       true,
		StoreDir:        n.storeDir,
		NoLog:           true,
		NoSigs:          true,
		Cluster: server.ClusterOpts{
			Name:      "loudly-test",
			Host:      "127.0.0.1",
			Port:      n.clusterPort,
			Advertise: n.advertised.Addr(),
		},
		Routes: routes,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		c.t.Fatalf("testenv: configure cluster node %s: %v", n.name, err)
	}
	n.logs = &errorLog{}
	srv.SetLoggerV2(n.logs, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		c.t.Fatalf("testenv: cluster node %s did not start on ports %d/%d: %s", n.name, n.clientPort, n.clusterPort, n.logs)
	}
	n.srv = srv
	if n.clientPort == server.RANDOM_PORT {
		n.clientPort = srv.Addr().(*net.TCPAddr).Port
		n.clusterPort = srv.ClusterAddr().Port
		n.client.retarget(fmt.Sprintf("127.0.0.1:%d", n.clientPort))
		for j, peer := range c.nodes {
			if j != i {
				peer.routeTo[i].retarget(fmt.Sprintf("127.0.0.1:%d", n.clusterPort))
			}
		}
	}
}

// localStream returns s's own copy of stream in the global account.
func localStream(s *server.Server, stream string) (server.StreamDetail, bool) {
	jsz, err := s.Jsz(&server.JSzOptions{Account: server.DEFAULT_GLOBAL_ACCOUNT, Streams: true})
	if err != nil {
		return server.StreamDetail{}, false
	}
	for _, a := range jsz.AccountDetails {
		for _, d := range a.Streams {
			if d.Name == stream {
				return d, true
			}
		}
	}
	return server.StreamDetail{}, false
}

// tail returns the last n warnings and errors the server logged.
func (l *errorLog) tail(n int) string {
	if l == nil {
		return "no log"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return "no errors logged"
	}
	return strings.Join(l.lines[max(0, len(l.lines)-n):], " | ")
}

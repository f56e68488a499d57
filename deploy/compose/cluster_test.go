package compose

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

const clusterFile = "docker-compose.cluster.yml"

// loadCluster loads the main file with the cluster profile layered over it, as
// `docker compose -f docker-compose.yml -f docker-compose.cluster.yml` does.
func loadCluster(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile, clusterFile},
		cli.WithWorkingDirectory("."), cli.WithEnvFiles(envFile), cli.WithDotEnv, cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("the compose specification's loader rejects %s over %s: %v", clusterFile, composeFile, err)
	}
	return p
}

// The cluster profile: three NATS nodes of one cluster, two replicas of each service, all
// of them on R3 streams and knowing every seed.
func TestClusterProfile(t *testing.T) {
	p := loadCluster(t)
	base := loadProject(t)
	want := append(slices.Clone(base.ServiceNames()), "inventory-2", "nats-2", "nats-3", "order-2", "postgres-standby")
	slices.Sort(want)
	if got := p.ServiceNames(); !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	names := map[string]bool{}
	for _, n := range []string{"nats", "nats-2", "nats-3"} {
		s := p.Services[n]
		if s.Image != base.Services["nats"].Image {
			t.Errorf("%s runs %s, want the main file's %s", n, s.Image, base.Services["nats"].Image)
		}
		if !slices.Equal([]string(s.Command), []string{"nats-server", "--config", "/etc/nats/cluster.conf"}) {
			t.Errorf("%s command %v", n, s.Command)
		}
		name := s.Environment["NATS_SERVER_NAME"]
		if name == nil || names[*name] {
			t.Errorf("%s has no server name of its own (%v)", n, name)
		} else {
			names[*name] = true
		}
		mounted := false
		for _, v := range s.Volumes {
			if v.Target == "/etc/nats/cluster.conf" && strings.HasSuffix(v.Source, "nats/cluster.conf") {
				mounted = true
			}
		}
		if !mounted || s.HealthCheck == nil {
			t.Errorf("%s: config mounted %v, healthcheck %v", n, mounted, s.HealthCheck)
		}
	}
	for _, n := range []string{"order", "order-2", "inventory", "inventory-2"} {
		s := p.Services[n]
		url, replicas := s.Environment["NATS_URL"], s.Environment["STREAM_REPLICAS"]
		if url == nil || *url != "nats://nats:4222,nats://nats-2:4222,nats://nats-3:4222" || replicas == nil || *replicas != "3" {
			t.Errorf("%s: NATS_URL %v, STREAM_REPLICAS %v; want the three seeds and 3", n, url, replicas)
		}
		role := strings.TrimSuffix(n, "-2") + "_svc"
		db := s.Environment["DATABASE_URL"]
		if db == nil || !strings.HasPrefix(*db, "postgres://"+role+":") ||
			!strings.Contains(*db, "@postgres:5432,postgres-standby:5432/loudly?") || !strings.Contains(*db, "target_session_attrs=read-write") {
			t.Errorf("%s: DATABASE_URL %v; want its role on both servers, the primary wanted", n, db)
		}
		for _, dep := range []string{"nats", "nats-2", "nats-3", "postgres", "postgres-standby"} {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s does not wait for %s to be healthy", n, dep)
			}
		}
	}
	// The standby: the primary's image, made from a base backup by standby.sh in front of
	// the image's entrypoint; the primary prepares replication in its init hook.
	standby := p.Services["postgres-standby"]
	if standby.Image != base.Services["postgres"].Image || standby.HealthCheck == nil ||
		!slices.Equal([]string(standby.Entrypoint), []string{"/usr/local/bin/loudly-standby.sh"}) {
		t.Errorf("postgres-standby: image %s, entrypoint %v, healthcheck %v", standby.Image, standby.Entrypoint, standby.HealthCheck)
	}
	if d, ok := standby.DependsOn["postgres"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Error("postgres-standby does not wait for the primary to be healthy")
	}
	mounts := map[string]string{}
	for _, v := range p.Services["postgres"].Volumes {
		mounts[v.Target] = v.Source
	}
	for _, v := range standby.Volumes {
		mounts["standby:"+v.Target] = v.Source
	}
	if !strings.HasSuffix(mounts["/docker-entrypoint-initdb.d/20-replication.sh"], "postgres/replication.sh") ||
		!strings.HasSuffix(mounts["/docker-entrypoint-initdb.d/10-roles.sql"], "postgres/roles.sql") ||
		!strings.HasSuffix(mounts["standby:/usr/local/bin/loudly-standby.sh"], "postgres/standby.sh") ||
		mounts["standby:/var/lib/postgresql/data"] != "postgres-standby-data" {
		t.Errorf("mounts of the pair: %v", mounts)
	}
	for _, n := range []string{"order-2", "inventory-2"} {
		s, first := p.Services[n], p.Services[strings.TrimSuffix(n, "-2")]
		if len(s.Ports) != 0 {
			t.Errorf("%s publishes %v: a second replica on the first one's port could not start", n, s.Ports)
		}
		if !slices.Equal([]string(s.Command), []string(first.Command)) || s.Image != first.Image || s.HealthCheck == nil {
			t.Errorf("%s is not a replica of %s: command %v, image %s", n, first.Name, s.Command, s.Image)
		}
	}
}

// The cluster's configuration: routes to all three nodes, an fsync before every
// acknowledgement (docs/scale-out.md: the durability trade-off of sync_interval).
func TestClusterNATSConfig(t *testing.T) {
	b, err := os.ReadFile("nats/cluster.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, want := range []string{"server_name: $NATS_SERVER_NAME", "sync_interval: always", "name: loudly",
		"nats://nats:6222", "nats://nats-2:6222", "nats://nats-3:6222", "store_dir: /data", "http: 0.0.0.0:8222"} {
		if !strings.Contains(conf, want) {
			t.Errorf("cluster.conf lacks %q", want)
		}
	}
}

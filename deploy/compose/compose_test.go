// Package compose holds the tests of the `docker compose up` demo (docker-compose.yml and
// every file it mounts). No Docker is needed: the compose file is loaded by the compose
// specification's own loader, the configurations are parsed, Prometheus's is checked by
// promtool, and the wiring between them (ports, hosts, uids, versions) is checked here so
// that a typo fails `go test ./...` instead of a container at start-up.
package compose

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"

	"loudly/loadtest/load"
	"loudly/services"
	"loudly/services/drill"
)

// The tests run in deploy/compose; the compose file's build contexts and the repository's
// dashboards and alerts are relative to it, as docker compose resolves them.
const (
	composeFile = "docker-compose.yml"
	envFile     = ".env"
	repoRoot    = "../.."
)

// wantServices is what the demo runs: the infrastructure around Loudly, and every Loudly
// service of services.All. Anything else added to the compose file must be added here,
// which is the moment to give it a healthcheck and a pinned image; a Loudly service is
// checked like the others (its image, program, healthcheck, environment and start-up
// order) by the tests below, which read the same list.
func wantServices() []string {
	want := append([]string{
		"alert-receiver", "grafana", "loadgen", "loki", "nats", "nats-exporter",
		"otel-collector", "postgres", "prometheus", "tempo",
	}, services.Names()...)
	slices.Sort(want)
	return want
}

// wantPorts are the only ports published on the host, all on loopback: Grafana, the two
// APIs (curl, loudly trace), Prometheus, and NATS for the loudly CLI (drills, dead
// letters) run from the host. Everything else is reached inside the compose network.
var wantPorts = map[string][]string{
	"grafana":    {"127.0.0.1:3000->3000"},
	"order":      {"127.0.0.1:8080->8080"},
	"inventory":  {"127.0.0.1:8081->8081"},
	"prometheus": {"127.0.0.1:9090->9090"},
	"nats":       {"127.0.0.1:4222->4222"},
}

// loadProject loads the compose file the way `docker compose -f deploy/compose/docker-compose.yml`
// does from the repository root: project directory deploy/compose, variables from its
// .env. The shell's environment is left out so that the test sees the committed knobs.
func loadProject(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory("."),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("the compose specification's loader rejects %s: %v", composeFile, err)
	}
	return project
}

func readEnv(t *testing.T) map[string]string {
	t.Helper()
	env, err := dotenv.Read(envFile)
	if err != nil {
		t.Fatalf("read %s: %v", envFile, err)
	}
	return env
}

func TestComposeFileLoads(t *testing.T) {
	project := loadProject(t)
	if project.Name != "loudly" {
		t.Errorf("project name %q, want loudly (container, volume and network names derive from it)", project.Name)
	}
	if got, want := project.ServiceNames(), wantServices(); !slices.Equal(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}
}

// Compose replaces an unset variable with an empty string and only warns: an image would
// become "nats:" and a password empty. Every variable the file uses must be in .env.
func TestEveryVariableIsSetInDotEnv(t *testing.T) {
	env := readEnv(t)
	ref := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}`)
	seen := map[string]bool{}
	// The cluster profile (layered over the main file) reads the same .env.
	for _, file := range []string{composeFile, "docker-compose.cluster.yml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			name := m[1]
			if strings.TrimSpace(env[name]) == "" {
				t.Errorf("%s uses ${%s}, which %s does not set", file, name, envFile)
			}
			seen[name] = true
		}
	}
	for name := range env {
		if !seen[name] {
			t.Errorf("%s sets %s, which neither compose file uses", envFile, name)
		}
	}
}

// exactTag is a release tag: at least major.minor, optionally with a v prefix and a
// variant suffix (3.7.7, v3.13.2, 16.10, 2.14.7-alpine).
var exactTag = regexp.MustCompile(`^v?\d+\.\d+(\.\d+)?(-[a-z0-9][a-z0-9.]*)?$`)

// integerTags are images whose project numbers its releases with one integer, so that a
// bare number is an exact release and not a floating major version.
var integerTags = map[string]bool{"mendhak/http-https-echo": true}

func splitImage(image string) (repo, tag string) {
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		return image[:i], image[i+1:]
	}
	return image, ""
}

func TestEveryImageIsPinned(t *testing.T) {
	project := loadProject(t)
	for _, name := range project.ServiceNames() {
		svc := project.Services[name]
		repo, tag := splitImage(svc.Image)
		switch {
		case svc.Image == "":
			t.Errorf("%s: no image; name the image so that it is built and tagged once", name)
		case strings.Contains(svc.Image, "@"):
			// A digest is as exact as it gets.
		case tag == "" || tag == "latest":
			t.Errorf("%s: image %q is not pinned to a release", name, svc.Image)
		case repo == "loudly" && svc.Build != nil:
			// Built from this repository and tagged with LOUDLY_VERSION (TestBuiltImages).
		case integerTags[repo] && regexp.MustCompile(`^\d+$`).MatchString(tag):
		case !exactTag.MatchString(tag):
			t.Errorf("%s: image %q: tag %q is not an exact release (want e.g. 1.2.3, v1.2.3, 16.10 or 1.2.3-alpine)", name, svc.Image, tag)
		}
		if svc.Build != nil && svc.PullPolicy != types.PullPolicyBuild {
			t.Errorf("%s: built locally but pull_policy is %q: compose would try to pull %q from a registry first", name, svc.PullPolicy, svc.Image)
		}
	}
}

// The image built from the repository is shared by every service that runs a Loudly
// binary, so compose builds it once; the third-party images that get a healthcheck probe
// added are tagged with the upstream version they are built from.
func TestBuiltImages(t *testing.T) {
	project := loadProject(t)
	env := readEnv(t)
	dockerfile := readDockerfile(t)
	wantTarget := map[string]string{
		"loadgen":        "app",
		"otel-collector": "otel-collector", "nats-exporter": "nats-exporter",
	}
	for _, s := range services.All {
		wantTarget[s.Name] = "app"
	}
	var built []string
	for _, name := range project.ServiceNames() {
		svc := project.Services[name]
		if svc.Build == nil {
			continue
		}
		built = append(built, name)
		b := svc.Build
		if want, ok := wantTarget[name]; !ok || b.Target != want {
			t.Errorf("%s: build target %q, want %q", name, b.Target, want)
		}
		root, _ := filepath.Abs(repoRoot)
		if b.Context != root {
			t.Errorf("%s: build context %s, want the repository root %s", name, b.Context, root)
		}
		df := b.Dockerfile
		if !filepath.IsAbs(df) {
			df = filepath.Join(b.Context, df)
		}
		if _, err := os.Stat(df); err != nil {
			t.Errorf("%s: Dockerfile: %v", name, err)
		}
		if _, ok := dockerfile.stages[b.Target]; !ok {
			t.Errorf("%s: the Dockerfile has no stage %q", name, b.Target)
		}
		for arg, val := range b.Args {
			if _, ok := dockerfile.args[arg]; !ok {
				t.Errorf("%s: build arg %s is not declared in the Dockerfile", name, arg)
			}
			if val == nil || *val == "" {
				t.Errorf("%s: build arg %s is empty", name, arg)
			}
		}
	}
	if want := sortedKeys(wantTarget); !slices.Equal(built, want) {
		t.Errorf("services built from the Dockerfile: %v, want %v", built, want)
	}
	// One image for every Loudly program: compose builds it once.
	for _, name := range append(services.Names(), "loadgen") {
		if img := project.Services[name].Image; img != "loudly:"+env["LOUDLY_VERSION"] {
			t.Errorf("%s image %q, want loudly:%s, the image every Loudly program shares (a different one would be built again)", name, img, env["LOUDLY_VERSION"])
		}
	}
	for svc, arg := range map[string]string{"otel-collector": "OTELCOL_VERSION", "nats-exporter": "NATS_EXPORTER_VERSION"} {
		if _, tag := splitImage(project.Services[svc].Image); tag != env[arg] {
			t.Errorf("%s image %q: tag should be the upstream version %s=%s", svc, project.Services[svc].Image, arg, env[arg])
		}
	}
}

// Every healthcheck must run in its image: several images have no shell (distroless, or
// FROM scratch), so the test is an exec form ("CMD") of a program the image has.
func TestEveryServiceHasAHealthcheck(t *testing.T) {
	project := loadProject(t)
	// The program each healthcheck runs, and why the image has it.
	wantProgram := map[string]string{
		"loadgen":        "/app/loadtest", // `loadtest healthcheck` asks -forever's /readyz
		"otel-collector": "/httpcheck",    // added by the Dockerfile
		"nats-exporter":  "/httpcheck",    // added by the Dockerfile
		"loki":           "/usr/bin/loki", // distroless; `loki -health`
		"tempo":          "/tempo",        // distroless; `tempo -health`
		"postgres":       "pg_isready",    // in the postgres image
		"nats":           "wget",          // busybox, alpine variant
		"prometheus":     "wget",          // busybox base image
		"grafana":        "wget",          // busybox, alpine base image
		"alert-receiver": "wget",          // busybox, node alpine base image
	}
	for _, s := range services.All {
		wantProgram[s.Name] = "/app/" + s.Name // `<service> healthcheck` asks its /readyz (lifecycle.Main)
	}
	for _, name := range project.ServiceNames() {
		hc := project.Services[name].HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("%s: no healthcheck", name)
			continue
		}
		if hc.Test[0] != "CMD" {
			t.Errorf("%s: healthcheck %q: use the exec form [\"CMD\", ...]; several images have no shell", name, hc.Test)
			continue
		}
		if want := wantProgram[name]; hc.Test[1] != want {
			t.Errorf("%s: healthcheck runs %q, want %q (a program its image is known to have)", name, hc.Test[1], want)
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil || hc.StartPeriod == nil {
			t.Errorf("%s: healthcheck without interval, timeout, retries and start_period: Docker's defaults (30s) make start-up crawl", name)
		}
	}
	binaries := readDockerfile(t).appBinaries
	for _, name := range append(services.Names(), "loadgen") {
		if project.Services[name].HealthCheck == nil {
			continue // reported above
		}
		prog := project.Services[name].HealthCheck.Test[1]
		if !slices.Contains(binaries, prog) {
			t.Errorf("%s: healthcheck runs %s, which the Dockerfile's app stage does not install (it has %v)", name, prog, binaries)
		}
	}
}

func TestDependsOnWaitsForHealth(t *testing.T) {
	project := loadProject(t)
	for _, name := range project.ServiceNames() {
		for dep, d := range project.Services[name].DependsOn {
			if d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s depends on %s with condition %q, want %q", name, dep, d.Condition, types.ServiceConditionHealthy)
			}
			if hc := project.Services[dep].HealthCheck; hc == nil || hc.Disable {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
	}
	// The order that makes the demo come up without errors in its logs.
	want := map[string][]string{
		"loadgen":        {"inventory", "order"},
		"otel-collector": {"loki", "tempo"},
		"nats-exporter":  {"nats"},
		"grafana":        {"alert-receiver", "loki", "prometheus", "tempo"},
	}
	for _, s := range services.All {
		want[s.Name] = []string{"loki", "nats", "otel-collector", "postgres"}
	}
	for name, deps := range want {
		if got := sortedKeys(project.Services[name].DependsOn); !slices.Equal(got, deps) {
			t.Errorf("%s depends on %v, want %v", name, got, deps)
		}
	}
}

func TestOnlyExpectedPortsArePublished(t *testing.T) {
	project := loadProject(t)
	for _, name := range project.ServiceNames() {
		var got []string
		for _, p := range project.Services[name].Ports {
			got = append(got, p.HostIP+":"+p.Published+"->"+strconv.Itoa(int(p.Target)))
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q: bind it to 127.0.0.1, the demo's passwords are in the repository", name, p.Published, p.HostIP)
			}
		}
		if want := wantPorts[name]; !slices.Equal(got, want) {
			t.Errorf("%s publishes %v, want %v", name, got, want)
		}
	}
}

// The state of the demo lives in named volumes, so `docker compose down` keeps it and
// `down -v` removes it; nothing is written into the repository.
func TestStateIsInNamedVolumes(t *testing.T) {
	project := loadProject(t)
	want := map[string]string{
		"postgres":   "/var/lib/postgresql/data",
		"nats":       "/data",
		"prometheus": "/prometheus",
		"loki":       "/loki",
		"tempo":      "/var/tempo",
		"grafana":    "/var/lib/grafana",
	}
	for name, target := range want {
		found := false
		for _, v := range project.Services[name].Volumes {
			if v.Type == types.VolumeTypeVolume && v.Target == target {
				found = true
				if _, ok := project.Volumes[v.Source]; !ok {
					t.Errorf("%s: volume %q is not declared under volumes:", name, v.Source)
				}
			}
		}
		if !found {
			t.Errorf("%s: no named volume at %s", name, target)
		}
	}
	for _, name := range project.ServiceNames() {
		for _, v := range project.Services[name].Volumes {
			if v.Type == types.VolumeTypeBind && !v.ReadOnly {
				t.Errorf("%s: bind mount %s is writable; the demo only reads the repository", name, v.Source)
			}
		}
	}
}

// Files of the repository that other parts of it provide (dashboards/ and alerts/): the
// stack mounts them, so they must exist. Until they are merged this test says which are
// missing; it does not pretend they are there.
var repositoryMounts = []string{
	"dashboards",                          // Grafana dashboards (JSON), the home dashboard among them
	"dashboards/business-throughput.json", // GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH
	"alerts/grafana-alerts.yaml",          // Grafana alert rules (provisioning file)
	"alerts/prometheus-rules.yaml",        // the same rules for Prometheus
}

func TestEveryBindMountExists(t *testing.T) {
	project := loadProject(t)
	root, _ := filepath.Abs(repoRoot)
	here, _ := filepath.Abs(".")
	var missingRepo []string
	for _, name := range project.ServiceNames() {
		for _, v := range project.Services[name].Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			_, err := os.Stat(v.Source)
			if err == nil {
				continue
			}
			rel, _ := filepath.Rel(root, v.Source)
			if !strings.HasPrefix(v.Source, here+string(filepath.Separator)) {
				missingRepo = append(missingRepo, rel+" (mounted by "+name+")")
				continue
			}
			t.Errorf("%s mounts %s, which does not exist: %v", name, rel, err)
		}
	}
	for _, p := range repositoryMounts {
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil && !slices.ContainsFunc(missingRepo, func(m string) bool { return strings.HasPrefix(m, p+" ") }) {
			missingRepo = append(missingRepo, p)
		}
	}
	if len(missingRepo) > 0 {
		sort.Strings(missingRepo)
		t.Errorf("the stack needs these repository files, which are not there yet (dashboards/ and alerts/ "+
			"are provided by their own work; `docker compose up` fails until they are merged):\n  %s",
			strings.Join(missingRepo, "\n  "))
	}
}

// Bind mounts of repository files outside deploy/compose must not make Docker create a
// missing source as an empty directory (a file mount would then silently be a directory).
func TestRepositoryMountsDoNotCreateHostPaths(t *testing.T) {
	project := loadProject(t)
	here, _ := filepath.Abs(".")
	for _, name := range project.ServiceNames() {
		for _, v := range project.Services[name].Volumes {
			if v.Type != types.VolumeTypeBind || strings.HasPrefix(v.Source, here+string(filepath.Separator)) {
				continue
			}
			if v.Bind == nil || bool(v.Bind.CreateHostPath) {
				t.Errorf("%s mounts %s with create_host_path on: a missing file would become an empty directory", name, v.Source)
			}
		}
	}
}

// The wiring between the services: each one finds the others where they listen.
func TestServicesReachTheirDependencies(t *testing.T) {
	project := loadProject(t)
	env := readEnv(t)
	for _, svc := range services.All {
		name := svc.Name
		e := project.Services[name].Environment
		want := map[string]string{
			// Its own role (postgres/roles.sql), owner of its schema only.
			"DATABASE_URL":                "postgres://" + svc.DBRole() + ":" + env[svc.DBPasswordVar()] + "@postgres:5432/loudly?sslmode=disable",
			"NATS_URL":                    "nats://nats:4222",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector:4318", // OTLP/HTTP, what the services export
			"LOKI_URL":                    "http://loki:3100/loki/api/v1/push",
			"OTEL_LOGS_EXPORTER":          "none", // one log path: the push above (README, "Logs")
			"OTEL_SERVICE_NAME":           name,
			"NATS_USER":                   svc.NATSUser(), // its user in nats/auth.conf, with its permissions
			"NATS_PASSWORD":               env[svc.NATSPasswordVar()],
		}
		// The demo is a training ground: a service a drill acts in accepts drills.
		if slices.ContainsFunc(drill.Catalog, func(d drill.Spec) bool { return d.Service == name }) {
			want["DRILLS"] = "enabled"
		}
		for k, v := range want {
			if got := e[k]; got == nil || *got != v {
				t.Errorf("%s: %s=%v, want %q", name, k, deref(got), v)
			}
		}
	}
	pg := project.Services["postgres"].Environment
	if deref(pg["POSTGRES_USER"]) != "loudly" || deref(pg["POSTGRES_DB"]) != "loudly" || deref(pg["POSTGRES_PASSWORD"]) != env["POSTGRES_PASSWORD"] {
		t.Errorf("postgres creates user %q, database %q; the services connect to loudly", deref(pg["POSTGRES_USER"]), deref(pg["POSTGRES_DB"]))
	}
	if mountedAt(project, "postgres", "/docker-entrypoint-initdb.d/10-roles.sql") == "" {
		t.Error("postgres does not mount postgres/roles.sql into /docker-entrypoint-initdb.d: the services' roles would not exist")
	}
	for _, svc := range services.All {
		if deref(pg[svc.DBPasswordVar()]) != env[svc.DBPasswordVar()] || env[svc.DBPasswordVar()] == "" {
			t.Errorf("postgres: %s=%q, want the .env password of %s's role", svc.DBPasswordVar(), deref(pg[svc.DBPasswordVar()]), svc.Name)
		}
	}
	natsEnv := project.Services["nats"].Environment
	for _, svc := range services.All {
		if deref(natsEnv[svc.NATSPasswordVar()]) != env[svc.NATSPasswordVar()] || env[svc.NATSPasswordVar()] == "" {
			t.Errorf("nats: %s=%q, want the .env password of %s's NATS user", svc.NATSPasswordVar(), deref(natsEnv[svc.NATSPasswordVar()]), svc.Name)
		}
	}
	// Each service listens where services.All says: Prometheus scrapes it there (and
	// loadgen asks order there).
	for _, s := range services.All {
		if got, want := deref(project.Services[s.Name].Environment["HTTP_ADDR"]), ":"+strconv.Itoa(s.Port); got != want {
			t.Errorf("%s HTTP_ADDR %q, want %q (its port in services.All, scraped there)", s.Name, got, want)
		}
	}
	cmd := strings.Join(project.Services["loadgen"].Command, " ")
	for _, want := range []string{"/app/loadtest", "-url=http://order:8080", "-nats=nats://loadgen:" + env["LOADGEN_NATS_PASSWORD"] + "@nats:4222",
		"-rate=" + env["LOAD_RATE"], "-poison=" + env["POISON"], "-forever"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("loadgen command %q lacks %q", cmd, want)
		}
	}
	g := project.Services["grafana"].Environment
	if deref(g["GF_AUTH_ANONYMOUS_ENABLED"]) != "true" || deref(g["GF_AUTH_ANONYMOUS_ORG_ROLE"]) != "Viewer" {
		t.Error("grafana: anonymous access must be on, as Viewer")
	}
	if deref(g["GF_SECURITY_ADMIN_PASSWORD"]) != env["GRAFANA_ADMIN_PASSWORD"] {
		t.Error("grafana: the admin password must come from GRAFANA_ADMIN_PASSWORD in .env")
	}
	home := deref(g["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
	if !strings.HasPrefix(home, "/var/lib/grafana/dashboards/") || mountedAt(project, "grafana", "/var/lib/grafana/dashboards") == "" {
		t.Errorf("grafana: home dashboard %q is not in the mounted dashboards directory", home)
	}
	// Longer than the services' SHUTDOWN_TIMEOUT (20s), or Docker kills them mid-drain.
	for _, name := range services.Names() {
		if g := project.Services[name].StopGracePeriod; g == nil || time.Duration(*g) <= 20*time.Second {
			t.Errorf("%s: stop_grace_period must exceed the services' 20s SHUTDOWN_TIMEOUT", name)
		}
	}
}

// mountedAt returns the source mounted at target in a service, or "".
func mountedAt(project *types.Project, service, target string) string {
	for _, v := range project.Services[service].Volumes {
		if v.Target == target {
			return v.Source
		}
	}
	return ""
}

// dockerfile is what the tests need to know of the repository's Dockerfile.
type dockerfile struct {
	args        map[string]string // ARG NAME=default, declared before the first FROM
	stages      map[string]string // stage name -> image it is FROM
	appBinaries []string          // what the app stage copies into /app, sorted
}

// goBuildPrograms returns the programs a `go build -o DIR/ PATTERNS...` command line
// writes into DIR/, by output directory: each pattern's directories holding a package
// main, named as go build names them (after the directory). ./services/... is every
// program under services/.
func goBuildPrograms(t *testing.T, fields []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	dir := ""
	for i, f := range fields {
		switch {
		case f == "-o" && i+1 < len(fields):
			dir = fields[i+1]
		case strings.HasPrefix(f, "./") && dir != "":
			root := filepath.Join(repoRoot, strings.TrimSuffix(f, "/..."))
			_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
				if err != nil || !e.IsDir() {
					return err
				}
				if isMainPackage(p) {
					out[dir] = append(out[dir], filepath.Base(p))
				}
				if !strings.HasSuffix(f, "/...") && p != root {
					return filepath.SkipDir
				}
				return nil
			})
		case f == "&&" || f == ";":
			dir = ""
		}
	}
	return out
}

// isMainPackage reports whether dir's Go files (tests aside) are package main.
func isMainPackage(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err == nil && regexp.MustCompile(`(?m)^package main\s*$`).Match(b) {
			return true
		}
	}
	return false
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{args: map[string]string{}, stages: map[string]string{}}
	// Join continuation lines first.
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	from := regexp.MustCompile(`(?i)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`)
	stage := ""
	built := map[string][]string{} // programs by output directory of the build stage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(line, "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "ARG":
			name, def, _ := strings.Cut(fields[1], "=")
			if _, ok := d.args[name]; !ok || stage == "" {
				d.args[name] = def
			}
		case "FROM":
			m := from.FindStringSubmatch(line)
			stage = m[2]
			d.stages[stage] = m[1]
		case "RUN":
			if stage == "build" {
				for dir, progs := range goBuildPrograms(t, fields) {
					built[dir] = append(built[dir], progs...)
				}
			}
		case "COPY":
			if stage == "app" && fields[len(fields)-1] == "/app/" {
				for _, src := range fields[1 : len(fields)-1] {
					switch {
					case strings.HasPrefix(src, "--"):
					case strings.HasSuffix(src, "/"): // a build output directory: every program in it
						for _, p := range built[src] {
							d.appBinaries = append(d.appBinaries, "/app/"+p)
						}
					default:
						d.appBinaries = append(d.appBinaries, "/app/"+filepath.Base(src))
					}
				}
			}
		}
	}
	slices.Sort(d.appBinaries)
	return d
}

// The Dockerfile pins its base images; the versions of the two third-party images it
// extends must agree with .env (compose passes .env's, a plain `docker build` uses these).
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	env := readEnv(t)
	for _, arg := range []string{"OTELCOL_VERSION", "NATS_EXPORTER_VERSION"} {
		if d.args[arg] != env[arg] {
			t.Errorf("Dockerfile ARG %s=%s, but .env says %s", arg, d.args[arg], env[arg])
		}
	}
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(d.args["GO_VERSION"]) {
		t.Errorf("Dockerfile ARG GO_VERSION=%q: pin an exact Go release", d.args["GO_VERSION"])
	}
	if goMod := goDirective(t); !versionAtLeast(d.args["GO_VERSION"], goMod) {
		t.Errorf("Dockerfile builds with Go %s, but go.mod needs %s", d.args["GO_VERSION"], goMod)
	}
	if got := d.stages["build"]; got != "golang:${GO_VERSION}-bookworm" {
		t.Errorf("build stage FROM %q, want golang:${GO_VERSION}-bookworm", got)
	}
	if got := d.stages["app"]; got != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("app stage FROM %q, want gcr.io/distroless/static-debian12:nonroot", got)
	}
	// Every service of services.All, the load generator and the CLI.
	want := []string{"/app/loadtest", "/app/loudly"}
	for _, s := range services.All {
		want = append(want, "/app/"+s.Name)
	}
	slices.Sort(want)
	if !slices.Equal(d.appBinaries, want) {
		t.Errorf("the app stage installs %v, want %v", d.appBinaries, want)
	}
	// Every package the build stage compiles exists.
	b, _ := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	for _, pkg := range regexp.MustCompile(`\./[a-z/]+`).FindAllString(string(b), -1) {
		if _, err := os.Stat(filepath.Join(repoRoot, pkg)); err != nil {
			t.Errorf("the Dockerfile builds %s: %v", pkg, err)
		}
	}
}

// What the Dockerfile and the README say about the upstream images it extends is what
// their Dockerfiles at the pinned releases build: otelcol-contrib's
// (opentelemetry-collector-releases, distributions/otelcol-contrib/Dockerfile) is FROM
// scratch, prometheus-nats-exporter's (cicd/Dockerfile) is FROM alpine with ENTRYPOINT
// ["/entrypoint.sh"]. A healthcheck written for the wrong base fails only in compose.
func TestUpstreamImageBasesAreDescribedAsTheyAre(t *testing.T) {
	dockerfile, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The comment block right above each stage.
	comment := func(stage string) string {
		lines := strings.Split(string(dockerfile), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, "FROM ") && strings.HasSuffix(l, " AS "+stage) {
				var c []string
				for j := i - 1; j >= 0 && strings.HasPrefix(lines[j], "#"); j-- {
					c = append([]string{lines[j]}, c...)
				}
				return strings.Join(c, " ")
			}
		}
		t.Fatalf("the Dockerfile has no stage %s", stage)
		return ""
	}
	if c := comment("otel-collector"); !strings.Contains(c, "FROM scratch") {
		t.Errorf("otel-collector stage comment %q: the collector-contrib image is FROM scratch", c)
	}
	if c := comment("nats-exporter"); strings.Contains(c, "scratch") || !strings.Contains(c, "Alpine") || !strings.Contains(c, "entrypoint script") {
		t.Errorf("nats-exporter stage comment %q: the image is Alpine with an entrypoint script", c)
	}
	flat := strings.Join(strings.Fields(string(readme)), " ")
	if strings.Contains(flat, "NATS exporter images are `FROM scratch`") || !strings.Contains(flat, "NATS exporter image is Alpine with an entrypoint script") {
		t.Error("README.md must say the NATS exporter image is Alpine with an entrypoint script, not FROM scratch")
	}
}

// The build context leaves out only what cannot change a binary; the packages the
// Dockerfile compiles must stay in it.
func TestDockerignoreKeepsTheSources(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var excluded, reincluded []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "!"):
			reincluded = append(reincluded, strings.TrimPrefix(line, "!"))
		default:
			excluded = append(excluded, line)
		}
	}
	for _, keep := range []string{"go.mod", "go.sum", "services", "pkg", "loadtest", "cmd", "internal"} {
		if slices.Contains(excluded, keep) {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
	if slices.Contains(excluded, "deploy") && !slices.Contains(reincluded, "deploy/compose/httpcheck") {
		t.Error(".dockerignore excludes deploy/ without keeping deploy/compose/httpcheck, which the Dockerfile compiles")
	}
}

func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// versionAtLeast compares dotted numeric versions (1.26.8 >= 1.26.0).
func versionAtLeast(have, need string) bool {
	h, n := strings.Split(have, "."), strings.Split(need, ".")
	for i := 0; i < len(n); i++ {
		hv, nv := 0, atoi(n[i])
		if i < len(h) {
			hv = atoi(h[i])
		}
		if hv != nv {
			return hv > nv
		}
	}
	return true
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func deref(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// The compose demo sends the load `make demo` sends (load.DemoRate, load.DemoPoison): the
// drill guides' claims are checked against that load (alerts.DemoClaims), and a trainee
// sees the same alerts on either demo.
func TestLoadIsTheDemos(t *testing.T) {
	env := readEnv(t)
	rate, err := strconv.ParseFloat(env["LOAD_RATE"], 64)
	if err != nil || rate != load.DemoRate {
		t.Errorf(".env LOAD_RATE=%q, want load.DemoRate %g (%v)", env["LOAD_RATE"], load.DemoRate, err)
	}
	poison, err := strconv.ParseFloat(env["POISON"], 64)
	if err != nil || poison != load.DemoPoison {
		t.Errorf(".env POISON=%q, want load.DemoPoison %g (%v)", env["POISON"], load.DemoPoison, err)
	}
}

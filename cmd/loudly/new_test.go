package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"loudly/alerts"
	"loudly/internal/scaffold"
	"loudly/services"
)

// repoRoot is the repository this test binary was built from (the test runs in
// cmd/loudly).
const repoRoot = "../.."

// copyRepository copies the repository's files — tracked ones and new ones not ignored,
// as in the working tree; never .git — into a temporary directory, so the scaffold can
// write into a repository of its own.
func copyRepository(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "-C", repoRoot, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files (this test copies the repository's files, and needs git and a checkout): %v", err)
	}
	dst := t.TempDir()
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(repoRoot, rel)
		info, err := os.Lstat(src)
		// Skipped: files deleted in the working tree, links, and big binaries someone built
		// in the tree (not sources, and slow to copy).
		if err != nil || !info.Mode().IsRegular() || info.Size() > 4<<20 {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// goIn runs the go command in dir with the test's own environment (DATABASE_URL and
// NATS_URL included: unset, the tests there start what they need), offline: every module
// is in the module cache already, since this test's own build needed them. -trimpath lets
// the copy's builds reuse the build cache across temporary directories.
func goIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return goInEnv(t, dir, nil, args...)
}

// goInEnv is goIn with env added to the command's environment.
func goInEnv(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandBudget(t))
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -mod=readonly -trimpath", "GOPROXY=off", "GOWORK=off"), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("go %s: %s", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("go %s in the scaffolded copy: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// commandBudget is how long one go command in the scaffolded copy may run: up to a minute
// before the test binary's own deadline (-timeout), so that a command that hangs fails with
// its output rather than the binary's panic, and a loaded machine that builds slowly (a cold
// build cache compiling Helm and client-go took over ten minutes here) is not mistaken for a
// hang. Without a deadline, 30 minutes.
func commandBudget(t *testing.T) time.Duration {
	deadline, ok := t.Deadline()
	if !ok {
		return 30 * time.Minute
	}
	return max(time.Until(deadline)-time.Minute, time.Minute)
}

func readIn(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The whole promise, end to end: in a copy of the repository, scaffold three services — one
// that publishes (with an outbox and a new stream), one that does not and consumes with a
// wildcard, and one that consumes a subject and event type that do not exist yet (keyed by
// a reference, not a UUID), which it declares in its own package with its own stream — and
// the copy builds, vets, passes the new services' own tests against real NATS and
// PostgreSQL (their events decided by their handlers, not dead-lettered), regenerates
// dashboards and alert rules that include them, and passes the checks of the list, the
// compose demo, the dashboards and the alerts. Nothing under pkg/ is edited.
//
// The names and subjects are ones no team would use, and the consumed subjects are those
// of the event samples, so the test keeps working in a repository that grew services of
// its own or renamed its module.
func TestNewService_ScaffoldsServicesThatBuildPassTheirTestsAndAreGenerated(t *testing.T) {
	t.Parallel()
	repo := copyRepository(t)
	module, err := scaffold.ModulePath(repo)
	if err != nil {
		t.Fatal(err)
	}
	const pub, sub = "scaffoldpub", "scaffoldsub"                  // the service that publishes, and the one that does not
	const own, ownSubject = "scaffoldown", "scaffoldown.requested" // the one with an event type of its own
	const ref = "scaffoldref"                                      // and one that consumes own's events
	consumed := scaffold.Samples[0].Subject                        // the publisher consumes one subject...
	wildcard := strings.Split(consumed, ".")[0] + ".>"             // ...the other every subject of its stream
	// Their ports: the next free ones after the listed services'.
	port1 := scaffold.FreePort(services.All)
	port2 := scaffold.FreePort(append(slices.Clone(services.All), services.Service{Port: port1}))
	p1, p2 := strconv.Itoa(port1), strconv.Itoa(port2)
	pkgBefore := treeDigest(t, filepath.Join(repo, "pkg"))

	r := loudly(t, "new", "service", pub, "--consumes", consumed, "--publishes", pub+".done", "-root", repo)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("new service %s: exit %d\n%s%s", pub, r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"services/" + pub + "/main.go", "services/" + pub + "/" + pub + "/handle.go", "services/" + pub + "/" + pub + "/store.go",
		"docs/runbooks/LoudlyScaffoldpubDown.md", "deploy/compose/docker-compose.yml", "deploy/compose/prometheus/prometheus.yml",
		"services/events/streams.go", "go generate ./dashboards/... ./alerts/...", "go test ./services/" + pub + "/...",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the report does not mention %q:\n%s", want, r.stdout)
		}
	}
	// Flags before the name work as well as after it.
	r = loudly(t, "new", "service", "-root", repo, "--consumes", wildcard, sub)
	if r.code != exitOK {
		t.Fatalf("new service %s: exit %d\n%s%s", sub, r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, ".outbox") || strings.Contains(r.stdout, "streams.go") || strings.Contains(r.stdout, "events.go") {
		t.Errorf("a service that publishes nothing got an outbox or a stream, or one consuming a known type its own type:\n%s", r.stdout)
	}
	// A subject and an event type that do not exist yet: the service declares them itself.
	r = loudly(t, "new", "service", own, "--consumes", ownSubject, "-root", repo)
	if r.code != exitOK {
		t.Fatalf("new service %s: exit %d\n%s%s", own, r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "services/"+own+"/"+own+"/events.go") || strings.Contains(r.stdout, "streams.go") {
		t.Errorf("the report of %s does not show its own events.go, or changes services/events:\n%s", own, r.stdout)
	}
	// A second service consuming that subject sees the first one's stream and event type,
	// and declares neither again.
	r = loudly(t, "new", "service", ref, "--consumes", ownSubject, "-root", repo)
	if r.code != exitOK {
		t.Fatalf("new service %s: exit %d\n%s%s", ref, r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "events.go") || strings.Contains(r.stdout, "streams.go") || strings.Contains(r.stdout, "new stream") {
		t.Errorf("%s declared %s's stream or event type again:\n%s", ref, own, r.stdout)
	}

	// The reference services' shape: a batch handler, the idempotency claim, the drills.
	handle := readIn(t, repo, "services/"+pub+"/"+pub+"/handle.go")
	for _, want := range []string{"items []consumer.Item[events.", "consumer.Duplicate(idempotency.ReasonSeen)", "consumer.Applied(ReasonApplied)"} {
		if !strings.Contains(handle, want) {
			t.Errorf("handle.go lacks %q:\n%s", want, handle)
		}
	}
	// Wired like the others.
	pkg := "services/" + pub + "/" + pub + "/"
	for file, wants := range map[string][]string{
		"services/" + pub + "/main.go": {"lifecycle.Main(lifecycle.Program[" + pub + ".Config, *" + pub + ".Service]", `DefaultAddr: ":` + p1 + `"`},
		"services/" + sub + "/main.go": {`DefaultAddr: ":` + p2 + `"`},
		pkg + "service.go": {"service.Open(ctx, service.Spec{", "Streams: events.Streams", "b.Idempotency()", "b.Outbox(ctx, s.drills.Publisher)",
			"s.drills, err = drill.Attach(b, cfg.Drills)", "b.ConsumeBatch(ctx, cc, consumer.HandleBatch(events.", `= "` + consumed + `"`},
		"services/" + sub + "/" + sub + "/service.go": {`= "` + wildcard + `"`, "b.ConsumeBatch(ctx"},
		pkg + "config.go":                        {"service.Config", `service.ConfigFromEnv(r, ":` + p1 + `")`, "drill.ConfigFromEnv(r)"},
		pkg + "store.go":                         {"idempotency.Table", "s.processed.Claim(first, events)", "s.outbox.Queue(ctx, writes, published"},
		pkg + "events.go":                        {"type ScaffoldpubDone struct", "ScaffoldpubDoneEvent = envelope.NewType(TypeScaffoldpubDone, validateScaffoldpubDone)"},
		pkg + "drain_test.go":                    {"func BenchmarkDrain(b *testing.B)"},
		pkg + "migrations/00001_" + pub + ".sql": {"CREATE TABLE " + pub + ".entities"},
		"services/" + own + "/" + own + "/events.go": {`TypeScaffoldownRequested    = "` + ownSubject + `"`, "type ScaffoldownRequested struct",
			"ScaffoldownRequestedEvent = envelope.NewType(TypeScaffoldownRequested, validateScaffoldownRequested)", "Name:        Stream,",
			`[]string{"` + own + `.>"}`},
		"services/" + own + "/" + own + "/service.go":      {`Stream   = "SCAFFOLDOWN"`, "Streams: Streams}", "consumer.HandleBatch(ScaffoldownRequestedEvent, h.handle, drills...)"},
		"services/" + own + "/" + own + "/handle.go":       {"items []consumer.Item[ScaffoldownRequested]"},
		"services/" + own + "/" + own + "/service_test.go": {`ScaffoldownRequestedEvent.New(key, ScaffoldownRequested{}, time.Now())`},
		"services/" + ref + "/" + ref + "/service.go": {"Streams: " + own + ".Streams}", `"` + module + "/services/" + own + "/" + own + `"`,
			"consumer.HandleBatch(" + own + ".ScaffoldownRequestedEvent, h.handle, drills...)"},
		"services/services.go": {`{Name: "` + pub + `", Port: ` + p1 + `, Schema: "` + pub + `", Outbox: true,`,
			`{Name: "` + sub + `", Port: ` + p2 + `, Schema: "` + sub + `", Outbox: false,`},
		"services/events/streams.go":               {`"SCAFFOLDPUB"`, `[]string{"` + pub + `.>"}`},
		"docs/runbooks/README.md":                  {"[LoudlyScaffoldpubDown](LoudlyScaffoldpubDown.md)", "[LoudlyScaffoldsubDown](LoudlyScaffoldsubDown.md)"},
		"deploy/compose/prometheus/prometheus.yml": {`- targets: ["` + pub + `:` + p1 + `"]`, `- targets: ["` + sub + `:` + p2 + `"]`},
		// Its own NATS user, allowed what it does; its own PostgreSQL role; their passwords.
		scaffold.AuthConfFile: {"{user: " + pub + ", password: $SCAFFOLDPUB_NATS_PASSWORD, permissions: $SCAFFOLDPUB_PERMISSIONS}", `"loudly.drills.` + pub + `"`,
			`"` + pub + `.done"`, `"deadletter.` + pub + `"`, `"$JS.ACK.ORDERS.` + pub + `.>"`, `"_INBOX.loudly-` + sub + `.>"`,
			`"$JS.API.STREAM.UPDATE.SCAFFOLDOWN"`, `"$JS.API.CONSUMER.MSG.NEXT.SCAFFOLDOWN.` + own + `"`},
		scaffold.RolesFile:       {"CREATE ROLE " + pub + "_svc", "CREATE SCHEMA IF NOT EXISTS " + own + " AUTHORIZATION " + own + "_svc"},
		scaffold.EnvFile:         {"SCAFFOLDPUB_NATS_PASSWORD=", "SCAFFOLDSUB_DB_PASSWORD="},
		scaffold.ClusterFile:     {"SCAFFOLDOWN_NATS_PASSWORD: ${SCAFFOLDOWN_NATS_PASSWORD}"},
		scaffold.ChartValuesFile: {"  " + pub + ":\n    port: " + p1 + "\n    dbRole: " + pub + "_svc\n", "      - stream: SCAFFOLDOWN\n        consumer: " + ref + "\n"},
	} {
		got := readIn(t, repo, file)
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Errorf("%s lacks %q", file, want)
			}
		}
	}
	for _, svc := range []string{sub, own} {
		if got := readIn(t, repo, "services/"+svc+"/"+svc+"/service.go"); strings.Contains(got, "Outbox(") {
			t.Errorf("%s publishes nothing but has an outbox", svc)
		}
	}
	if got := readIn(t, repo, "services/events/streams.go"); strings.Contains(got, "SCAFFOLDOWN") {
		t.Error("the service with its own event type changed services/events")
	}

	// The runbook skeleton shows the rule alerts/ generates for the service.
	rule := alerts.ServiceRules(alerts.Production, services.Service{Name: pub, Port: port1, Schema: pub, Outbox: true})[0]
	if runbook := readIn(t, repo, rule.RunbookURL()); !strings.Contains(runbook, rule.Expr()) || !strings.Contains(runbook, "# "+rule.Name+"\n") {
		t.Errorf("%s does not show %s's expression %s:\n%s", rule.RunbookURL(), rule.Name, rule.Expr(), runbook)
	}

	// Every sample event the scaffold knows compiles and is a valid event of its subject.
	writeSampleCheck(t, repo, module)

	goIn(t, repo, "build", "./...")
	goIn(t, repo, "vet", "./services/"+pub+"/...", "./services/"+sub+"/...", "./services/"+own+"/...", "./services/"+ref+"/...")
	goIn(t, repo, "generate", "./dashboards/...", "./alerts/...", "./deploy/kubernetes/...")
	for file, wants := range map[string][]string{
		"dashboards/consumer-internals.json": {`"title": "` + pub + `: instances up"`, `up{job=\"` + sub + `\"}`,
			`job=~\"` + strings.Join(append(services.Names(), pub, sub, own, ref), "|") + `\"`},
		"alerts/prometheus-rules.yaml":      {"alert: LoudlyScaffoldpubDown", `up{job="` + sub + `"}`},
		"alerts/grafana-alerts.yaml":        {"title: LoudlyScaffoldpubDown", "title: LoudlyScaffoldsubDown"},
		"deploy/compose/docker-compose.yml": {`command: ["/app/` + pub + `"]`, `test: ["CMD", "/app/` + sub + `", "healthcheck"]`},
	} {
		got := readIn(t, repo, file)
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Errorf("%s lacks %q", file, want)
			}
		}
	}
	out := goIn(t, repo, "test", "-count=1", "-timeout=3m",
		"./services/"+pub+"/...", "./services/"+sub+"/...", "./services/"+own+"/...", "./services/"+ref+"/...", "./internal/scaffoldsamples/",
		"./services/", "./deploy/compose/", "./deploy/kubernetes/", "./dashboards/", "./alerts/", "./internal/scaffold/",
		"-run", "^(TestService_.*|TestConfigFromEnv|TestSamples|TestAll_IsTheServicesThatExist|TestComposeFileLoads|TestBuiltImages|"+
			"TestEveryServiceHasAHealthcheck|TestDependsOnWaitsForHealth|TestServicesReachTheirDependencies|TestPrometheusConfig|"+
			"TestClusterConfHasTheSameUsers|TestLeastPrivilege_EachServiceDoesItsWorkAndNothingElse|TestRoleSQL_IsHowRolesSQLMakesEachRole|"+
			"TestPrometheusConfigPassesPromtool|TestDockerfile|TestGeneratedFilesAreInSync|TestRules_AreActionable|"+
			"TestPromtool_ChecksAndUnitTestsTheRules|TestRuleFiles_AgreeAndUseTheProvisionedDatasources|TestDashboards_HaveUniqueIDsAndEveryQueryIsComplete|"+
			"TestChart_ServicesAreTheServiceList|TestChart_RolesAreRolesSQL|TestChart_NATSUsersAreAuthConf)$")
	for _, p := range []string{"services/" + pub + "/" + pub, "services/" + sub + "/" + sub, "services/" + own + "/" + own, "services/" + ref + "/" + ref, "internal/scaffoldsamples", "services", "deploy/compose", "deploy/kubernetes", "dashboards", "alerts", "internal/scaffold"} {
		if !strings.Contains(out, "ok  \t"+module+"/"+p+"\t") {
			t.Errorf("go test did not pass %s/%s:\n%s", module, p, out)
		}
	}
	// The benchmark a scaffolded service brings runs (its figures are measured apart, on a
	// quiet machine: docs/template.md).
	bench := goInEnv(t, repo, []string{"DRAIN_EVENTS=200"}, "test", "-count=1", "-run", "^$", "-bench", "^BenchmarkDrain$", "-benchtime", "1x", "./services/"+pub+"/"+pub+"/")
	if !strings.Contains(bench, "speedup") {
		t.Errorf("BenchmarkDrain of %s reported no speedup:\n%s", pub, bench)
	}
	if treeDigest(t, filepath.Join(repo, "pkg")) != pkgBefore {
		t.Error("scaffolding the services edited something under pkg/")
	}
}

// treeDigest is the paths and contents of every file under dir, to compare.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		b.WriteString(p + "\x00" + string(data) + "\x00")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// writeSampleCheck adds to the copy a test that builds every event sample of scaffold.Samples
// from its Go source and decodes it as the consumer runner would.
func writeSampleCheck(t *testing.T, repo, module string) {
	t.Helper()
	var cases strings.Builder
	for _, s := range scaffold.Samples {
		cases.WriteString("\t\t{" + strconv.Quote(s.Subject) + ", events." + s.Type + ", " + s.Data + "},\n")
	}
	src := `package scaffoldsamples

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"` + module + `/services/events"
)

func TestSamples_AreValidEvents(t *testing.T) {
	for _, c := range []struct {
		subject, typ string
		data         any
	}{
` + cases.String() + `	} {
		_, payload, err := events.New(c.typ, uuid.NewString(), c.data, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if env, err := events.Decode(payload); err != nil || env.Type != c.typ {
			t.Errorf("the sample of %s does not decode as %s: %v", c.subject, c.typ, err)
		}
	}
}
`
	dir := filepath.Join(repo, "internal", "scaffoldsamples")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"doc.go":          "// Package scaffoldsamples checks cmd/loudly's event samples (written by its test).\npackage scaffoldsamples\n",
		"samples_test.go": src,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Every refusal exits 2 with a message that says what is wrong, and writes nothing.
func TestNewService_Refuses(t *testing.T) {
	t.Parallel()
	repo := copyRepository(t)
	snapshot := func() []byte {
		var b bytes.Buffer
		for _, f := range []string{scaffold.ServicesFile, scaffold.StreamsFile, scaffold.ComposeFile, scaffold.PrometheusFile, scaffold.RunbookIndex,
			scaffold.AuthConfFile, scaffold.RolesFile, scaffold.EnvFile, scaffold.ClusterFile, scaffold.ChartValuesFile} {
			b.WriteString(readIn(t, repo, f))
		}
		entries, _ := os.ReadDir(filepath.Join(repo, "services"))
		for _, e := range entries {
			b.WriteString(e.Name() + "\n")
		}
		return b.Bytes()
	}
	const name = "scaffoldnew" // a name no team would use, with subjects of the event samples
	consumed := scaffold.Samples[0].Subject
	first := strings.Split(consumed, ".")[0]
	wildcard := first + ".>"
	before := snapshot()
	for _, c := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"an existing service", []string{services.All[0].Name, "--consumes", consumed}, "services/" + services.All[0].Name + " already exists"},
		{"a name the compose demo uses", []string{"grafana", "--consumes", consumed}, "already runs a service named grafana"},
		{"an upper-case name", []string{"Foo", "--consumes", consumed}, `"Foo" is not a valid Go package name`},
		{"a name starting with a digit", []string{"9x", "--consumes", consumed}, `"9x" is not a valid Go package name`},
		{"a Go keyword", []string{"type", "--consumes", consumed}, `"type" is a Go keyword`},
		{"a hyphen", []string{"my-svc", "--consumes", consumed}, `"my-svc" is not a valid Go package name: use lower-case letters, digits and underscores, starting with a letter (mysvc would do)`},
		{"a predeclared identifier", []string{"string", "--consumes", consumed}, "predeclared Go identifier"},
		{"main", []string{"main", "--consumes", consumed}, `"main" cannot be used`},
		{"no --consumes", []string{name}, "--consumes is required"},
		{"no name", []string{"--consumes", consumed}, "missing arguments"},
		{"two names", []string{"a", "b", "--consumes", consumed}, "unexpected arguments: b"},
		{"an upper-case subject", []string{name, "--consumes", strings.ToUpper(consumed)}, `--consumes "` + strings.ToUpper(consumed) + `" is not a subject`},
		{"an empty token", []string{name, "--consumes", strings.Replace(consumed, ".", "..", 1)}, "is not a subject"},
		{"a one-token subject", []string{name, "--consumes", first}, "at least two tokens"},
		{"a wildcard first token", []string{name, "--consumes", "*.placed"}, "is not a subject"},
		{"> before the end", []string{name, "--consumes", first + ".>.x"}, "is not a subject"},
		{"a wildcard no stream holds", []string{name, "--consumes", "scaffoldnowhere.*"}, "no stream holds it (streams: "},
		{"a subject with no event type", []string{name, "--consumes", first + ".scaffoldnothing"}, "no known event type travels on it"},
		{"the dead letters", []string{name, "--consumes", "deadletter.inventory"}, "letters are not events"},
		{"a wildcard to publish", []string{name, "--consumes", consumed, "--publishes", "billing.*"}, `--publishes "billing.*" is not a subject`},
		{"publishing what it consumes", []string{name, "--consumes", wildcard, "--publishes", first + ".done"}, "would consume its own events"},
		{"publishing dead letters", []string{name, "--consumes", consumed, "--publishes", "deadletter.x"}, "only the consumer runner writes to"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := loudly(t, append([]string{"new", "service", "-root", repo}, c.args...)...)
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2 and %q on stderr", r.code, r.stdout, r.stderr, c.want)
			}
			// A refusal says why, and where the usage is, without the usage burying it; a
			// command line of the wrong shape gets the usage.
			shape := strings.Contains(c.want, "arguments")
			if full := strings.Contains(r.stderr, "Usage:"); full != shape {
				t.Errorf("stderr has the whole usage: %t, want %t:\n%s", full, shape, r.stderr)
			}
			if !shape && !strings.Contains(r.stderr, "loudly new service -h shows the usage") {
				t.Errorf("stderr does not say where the usage is:\n%s", r.stderr)
			}
		})
	}
	if !bytes.Equal(before, snapshot()) {
		t.Error("a refused command line changed the repository")
	}
	// Not a Loudly repository: a failure (1), not a usage error.
	if r := loudly(t, "new", "service", name, "--consumes", consumed, "-root", t.TempDir()); r.code != exitFailed {
		t.Errorf("in an empty directory: exit %d, want 1\n%s", r.code, r.stderr)
	}
}

func TestNewService_Help(t *testing.T) {
	for _, args := range [][]string{{"new", "-h"}, {"help", "new", "service"}, {"new", "service", "-h"}} {
		r := loudly(t, args...)
		if r.code != exitOK || !strings.Contains(r.stdout, "service NAME --consumes SUBJECT") {
			t.Errorf("%v: exit %d, stdout:\n%s", args, r.code, r.stdout)
		}
	}
}

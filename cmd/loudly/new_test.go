package main

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"loudly/alerts"
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
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS="+os.Getenv("GOFLAGS")+" -mod=readonly -trimpath", "GOPROXY=off", "GOWORK=off")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("go %s: %s", strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("go %s in the scaffolded copy: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readIn(t *testing.T, dir, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The whole promise, end to end: in a copy of the repository, scaffold two services — one
// that publishes (with an outbox and a new stream), one that does not and consumes with a
// wildcard — and the copy builds, vets, passes the new services' own tests against real
// NATS and PostgreSQL, regenerates dashboards and alert rules that include them, and
// passes the checks of the list, the compose demo, the dashboards and the alerts.
//
// The names and subjects are ones no team would use, and the consumed subjects are those
// of the event samples, so the test keeps working in a repository that grew services of
// its own or renamed its module.
func TestNewService_ScaffoldsServicesThatBuildPassTheirTestsAndAreGenerated(t *testing.T) {
	t.Parallel()
	repo := copyRepository(t)
	module, err := modulePath(repo)
	if err != nil {
		t.Fatal(err)
	}
	const pub, sub = "scaffoldpub", "scaffoldsub"      // the service that publishes, and the one that does not
	consumed := eventSamples[0].Subject                // the publisher consumes one subject...
	wildcard := strings.Split(consumed, ".")[0] + ".>" // ...the other every subject of its stream
	// Their ports: the next free ones after the listed services'.
	port1 := freePort(services.All)
	port2 := freePort(append(slices.Clone(services.All), services.Service{Port: port1}))
	p1, p2 := strconv.Itoa(port1), strconv.Itoa(port2)

	r := loudly(t, "new", "service", pub, "--consumes", consumed, "--publishes", pub+".done", "-root", repo)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("new service %s: exit %d\n%s%s", pub, r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"services/" + pub + "/main.go", "services/" + pub + "/" + pub + "/handle.go", "services/" + pub + "/" + pub + "/migrations/00002_outbox.sql",
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
	if strings.Contains(r.stdout, "00002_outbox.sql") || strings.Contains(r.stdout, "streams.go") {
		t.Errorf("a service that publishes nothing got an outbox or a stream:\n%s", r.stdout)
	}

	// The handler is honest until someone writes it.
	handle := readIn(t, repo, "services/"+pub+"/"+pub+"/handle.go")
	for _, want := range []string{"NOT IMPLEMENTED YET", `ReasonNotImplemented = "not_implemented"`, "return consumer.Rejected(ReasonNotImplemented)\n}"} {
		if !strings.Contains(handle, want) {
			t.Errorf("handle.go lacks %q:\n%s", want, handle)
		}
	}
	// Wired like the others.
	pkg := "services/" + pub + "/" + pub + "/"
	for file, wants := range map[string][]string{
		"services/" + pub + "/main.go": {"lifecycle.Main(lifecycle.Program[" + pub + ".Config, *" + pub + ".Service]", `DefaultAddr: ":` + p1 + `"`},
		"services/" + sub + "/main.go": {`DefaultAddr: ":` + p2 + `"`},
		pkg + "service.go": {"postgres.Migrate(ctx, s.pool, Schema, sub)", "broker.Connect(", "outbox.NewRelay(", "consumer.New(",
			`checks.Add("consumers"`, "httpapi.Listen(", "lifecycle.Serve(", `= "` + consumed + `"`},
		"services/" + sub + "/" + sub + "/service.go": {`= "` + wildcard + `"`},
		pkg + "config.go": {`r.URL("DATABASE_URL"`, `r.URL("NATS_URL"`, `r.Addr("HTTP_ADDR", ":` + p1 + `")`, "consumer.Tuning(r)"},
		pkg + "migrations/00001_processed_events.sql": {"CREATE TABLE " + pub + ".processed_events"},
		pkg + "migrations/00002_outbox.sql":           {"CREATE TABLE " + pub + ".outbox"},
		"services/services.go": {`{Name: "` + pub + `", Port: ` + p1 + `, Schema: "` + pub + `", Outbox: true,`,
			`{Name: "` + sub + `", Port: ` + p2 + `, Schema: "` + sub + `", Outbox: false,`},
		"services/events/streams.go":               {`"SCAFFOLDPUB"`, `[]string{"` + pub + `.>"}`},
		"docs/runbooks/README.md":                  {"[LoudlyScaffoldpubDown](LoudlyScaffoldpubDown.md)", "[LoudlyScaffoldsubDown](LoudlyScaffoldsubDown.md)"},
		"deploy/compose/prometheus/prometheus.yml": {`- targets: ["` + pub + `:` + p1 + `"]`, `- targets: ["` + sub + `:` + p2 + `"]`},
	} {
		got := readIn(t, repo, file)
		for _, want := range wants {
			if !strings.Contains(got, want) {
				t.Errorf("%s lacks %q", file, want)
			}
		}
	}
	// The runbook skeleton shows the rule alerts/ generates for the service.
	rule := alerts.ServiceRules(alerts.Production, services.Service{Name: pub, Port: port1, Schema: pub, Outbox: true})[0]
	if runbook := readIn(t, repo, rule.RunbookURL()); !strings.Contains(runbook, rule.Expr()) || !strings.Contains(runbook, "# "+rule.Name+"\n") {
		t.Errorf("%s does not show %s's expression %s:\n%s", rule.RunbookURL(), rule.Name, rule.Expr(), runbook)
	}

	// Every sample event the scaffold knows compiles and is a valid event of its subject.
	writeSampleCheck(t, repo, module)

	goIn(t, repo, "build", "./...")
	goIn(t, repo, "vet", "./services/"+pub+"/...", "./services/"+sub+"/...")
	goIn(t, repo, "generate", "./dashboards/...", "./alerts/...")
	for file, wants := range map[string][]string{
		"dashboards/consumer-internals.json": {`"title": "` + pub + `: instances up"`, `up{job=\"` + sub + `\"}`,
			`job=~\"` + strings.Join(append(services.Names(), pub, sub), "|") + `\"`},
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
		"./services/"+pub+"/...", "./services/"+sub+"/...", "./internal/scaffoldsamples/",
		"./services/", "./deploy/compose/", "./dashboards/", "./alerts/",
		"-run", "^(TestService|TestConfigFromEnv|TestSamples|TestAll_IsTheServicesThatExist|TestComposeFileLoads|TestBuiltImages|"+
			"TestEveryServiceHasAHealthcheck|TestDependsOnWaitsForHealth|TestServicesReachTheirDependencies|TestPrometheusConfig|"+
			"TestPrometheusConfigPassesPromtool|TestDockerfile|TestGeneratedFilesAreInSync|TestRules_AreActionable|"+
			"TestPromtool_ChecksAndUnitTestsTheRules|TestRuleFiles_AgreeAndUseTheProvisionedDatasources|TestDashboards_HaveUniqueIDsAndEveryQueryIsComplete)$")
	for _, p := range []string{"services/" + pub + "/" + pub, "services/" + sub + "/" + sub, "internal/scaffoldsamples", "services", "deploy/compose", "dashboards", "alerts"} {
		if !strings.Contains(out, "ok  \t"+module+"/"+p+"\t") {
			t.Errorf("go test did not pass %s/%s:\n%s", module, p, out)
		}
	}
}

// writeSampleCheck adds to the copy a test that builds every event sample of eventSamples
// from its Go source and decodes it as the consumer runner would.
func writeSampleCheck(t *testing.T, repo, module string) {
	t.Helper()
	var cases strings.Builder
	for _, s := range eventSamples {
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
		for _, f := range []string{servicesFile, streamsFile, composeFile, prometheusFile, runbookIndex} {
			b.WriteString(readIn(t, repo, f))
		}
		entries, _ := os.ReadDir(filepath.Join(repo, "services"))
		for _, e := range entries {
			b.WriteString(e.Name() + "\n")
		}
		return b.Bytes()
	}
	const name = "scaffoldnew" // a name no team would use, with subjects of the event samples
	consumed := eventSamples[0].Subject
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
		{"a subject no stream holds", []string{name, "--consumes", "scaffoldnowhere.captured"}, "no stream holds it (streams: "},
		{"a subject with no event type", []string{name, "--consumes", first + ".scaffoldnothing"}, "no event type of services/events travels on it"},
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

// eventSamples must know every subject of services/events: a subject missing here could not
// be consumed by a scaffolded service.
func TestEventSamples_CoverEverySubject(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(repoRoot, "services/events/events.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	subjects, types := map[string]string{}, map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.BasicLit)
			if !ok {
				continue
			}
			switch v, _ := strconv.Unquote(lit.Value); {
			case strings.HasPrefix(name.Name, "Subject"):
				subjects[name.Name] = v
			case strings.HasPrefix(name.Name, "Type"):
				types[name.Name] = true
			}
		}
		return true
	})
	if len(subjects) == 0 {
		t.Fatal("found no Subject constants in services/events")
	}
	for name, subject := range subjects {
		if !slices.ContainsFunc(eventSamples, func(s eventSample) bool { return s.Subject == subject }) {
			t.Errorf("events.%s (%s) has no sample in eventSamples", name, subject)
		}
	}
	for _, s := range eventSamples {
		if !types[s.Type] {
			t.Errorf("sample of %s: events.%s is not an event type", s.Subject, s.Type)
		}
	}
}

func TestSubjects(t *testing.T) {
	for _, c := range []struct {
		pattern, subject string
		covers, overlaps bool
	}{
		{"orders.>", "orders.placed", true, true},
		{"orders.>", "orders.>", true, true},
		{"orders.>", "orders.*", true, true},
		{"orders.>", "orders", false, false},
		{"orders.*", "orders.placed", true, true},
		{"orders.*", "orders.placed.x", false, false},
		{"orders.placed", "orders.*", false, true},
		{"orders.placed", "orders.placed", true, true},
		{"inventory.>", "orders.placed", false, false},
		{"shipping.>", "shipping.scheduled", true, true},
	} {
		if got := covers(c.pattern, c.subject); got != c.covers {
			t.Errorf("covers(%s, %s) = %v", c.pattern, c.subject, got)
		}
		if got := overlaps(c.pattern, c.subject); got != c.overlaps {
			t.Errorf("overlaps(%s, %s) = %v", c.pattern, c.subject, got)
		}
	}
}

func TestSchemaAndPort(t *testing.T) {
	for name, want := range map[string]string{"shipping": "shipping", "user": "user_svc", "order": "order_svc", "pg_x": "svc_pg_x"} {
		if got := schemaFor(name); got != want {
			t.Errorf("schemaFor(%s) = %s, want %s", name, got, want)
		}
	}
	if got := freePort([]services.Service{{Port: 8080}, {Port: 8081}}); got != 8082 {
		t.Errorf("freePort after 8080 and 8081 = %d, want 8082", got)
	}
	if got := freePort([]services.Service{{Port: 8887}}); got != 8890 {
		t.Errorf("freePort after 8887 = %d, want 8890 (8888 and 8889 are the collector's)", got)
	}
}

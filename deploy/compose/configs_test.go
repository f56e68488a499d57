package compose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"loudly/internal/testenv"
	"loudly/services"
)

// The configuration files the compose file mounts, each parsed as YAML (a duplicated key
// is an error, as it is for the programs that read them).
const (
	collectorConfig  = "otel-collector/config.yaml"
	prometheusConfig = "prometheus/prometheus.yml"
	lokiConfig       = "loki/loki.yaml"
	tempoConfig      = "tempo/tempo.yaml"
	datasourcesFile  = "grafana/provisioning/datasources/datasources.yaml"
	dashboardsFile   = "grafana/provisioning/dashboards/loudly.yaml"
	contactPoints    = "grafana/provisioning/alerting/contact-points.yaml"
	policiesFile     = "grafana/provisioning/alerting/notification-policies.yaml"
)

// yml is a parsed YAML document, walked with get.
type yml = map[string]any

func readYAML(t *testing.T, path string) yml {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yml
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// get walks a path of mapping keys ("a", "b") or sequence indexes (0) and returns what is
// there, or nil.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

func list(v any, path ...any) []any {
	s, _ := get(v, path...).([]any)
	return s
}

func strs(v any, path ...any) []string {
	var out []string
	for _, e := range list(v, path...) {
		out = append(out, fmt.Sprint(e))
	}
	return out
}

func TestConfigFilesAreValidYAML(t *testing.T) {
	for _, f := range []string{collectorConfig, prometheusConfig, lokiConfig, tempoConfig,
		datasourcesFile, dashboardsFile, contactPoints, policiesFile} {
		t.Run(f, func(t *testing.T) {
			if doc := readYAML(t, f); len(doc) == 0 {
				t.Errorf("%s is empty", f)
			}
		})
	}
}

// port returns the port of a host:port or URL.
func port(t *testing.T, addr string) string {
	t.Helper()
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("%q: %v", addr, err)
	}
	return p
}

func TestCollectorConfig(t *testing.T) {
	c := readYAML(t, collectorConfig)
	project := loadProject(t)

	// Every component a pipeline names is configured, and every signal has a pipeline.
	for _, signal := range []string{"traces", "metrics", "logs"} {
		pipe := get(c, "service", "pipelines", signal)
		if pipe == nil {
			t.Errorf("no %s pipeline: the services export %s over OTLP", signal, signal)
			continue
		}
		for _, kind := range []string{"receivers", "processors", "exporters"} {
			for _, name := range strs(pipe, kind) {
				if _, ok := get(c, kind).(map[string]any)[name]; !ok {
					t.Errorf("%s pipeline uses %s %q, which is not configured", signal, kind, name)
				}
			}
		}
	}
	for _, name := range strs(c, "service", "extensions") {
		if get(c, "extensions", name) == nil {
			t.Errorf("extension %q is enabled but not configured", name)
		}
	}

	// The OTLP receiver listens on every interface: its default is localhost since
	// v0.104, which other containers cannot reach.
	for proto, want := range map[string]string{"grpc": "0.0.0.0:4317", "http": "0.0.0.0:4318"} {
		if got := str(c, "receivers", "otlp", "protocols", proto, "endpoint"); got != want {
			t.Errorf("OTLP %s receiver on %q, want %q", proto, got, want)
		}
	}

	// Its healthcheck asks the health_check extension where it listens.
	hc := project.Services["otel-collector"].HealthCheck.Test
	if got, want := port(t, hc[len(hc)-1]), port(t, str(c, "extensions", "health_check", "endpoint")); got != want {
		t.Errorf("the collector's healthcheck asks port %s, its health_check extension listens on %s", got, want)
	}

	// Where it sends things is where they listen.
	tempo := readYAML(t, tempoConfig)
	if got, want := str(c, "exporters", "otlp_grpc/tempo", "endpoint"), "tempo:"+port(t, str(tempo, "distributor", "receivers", "otlp", "protocols", "grpc", "endpoint")); got != want {
		t.Errorf("traces go to %q, Tempo's OTLP/gRPC receiver is %q", got, want)
	}
	loki := readYAML(t, lokiConfig)
	if got, want := str(c, "exporters", "otlp_http/loki", "endpoint"), fmt.Sprintf("http://loki:%v/otlp", get(loki, "server", "http_listen_port")); got != want {
		t.Errorf("logs go to %q, Loki's OTLP endpoint is %q", got, want)
	}

	// Its Prometheus exporter re-exports the services' OTLP metrics under a prefix: the same
	// names would make every sum over the scraped metrics count twice.
	if str(c, "exporters", "prometheus", "namespace") == "" {
		t.Error("the prometheus exporter has no namespace: loudly_decisions_total would be counted twice, scraped and via OTLP")
	}
	targets := scrapeTargets(t)
	for _, addr := range []string{
		"otel-collector:" + port(t, str(c, "exporters", "prometheus", "endpoint")),
		fmt.Sprintf("otel-collector:%v", get(c, "service", "telemetry", "metrics", "readers", 0, "pull", "exporter", "prometheus", "port")),
	} {
		if !slices.Contains(targets, addr) {
			t.Errorf("the collector serves metrics on %s, which Prometheus does not scrape (it scrapes %v)", addr, targets)
		}
	}
}

// scrapeTargets lists every static target of the Prometheus config.
func scrapeTargets(t *testing.T) []string {
	p := readYAML(t, prometheusConfig)
	var out []string
	for _, sc := range list(p, "scrape_configs") {
		for _, st := range list(sc, "static_configs") {
			out = append(out, strs(st, "targets")...)
		}
	}
	return out
}

// listenPorts is where each service serves /metrics (or is otherwise scraped): the Loudly
// services at their port of services.All, and the rest of the demo.
func listenPorts() map[string][]string {
	ports := map[string][]string{
		"nats-exporter":  {"7777"},
		"otel-collector": {"8888", "8889"},
		"loki":           {"3100"},
		"tempo":          {"3200"},
		"localhost":      {"9090"}, // Prometheus itself
	}
	for _, s := range services.All {
		ports[s.Name] = []string{strconv.Itoa(s.Port)}
	}
	return ports
}

func TestPrometheusConfig(t *testing.T) {
	p := readYAML(t, prometheusConfig)
	project := loadProject(t)
	jobs := map[string][]string{}
	for _, sc := range list(p, "scrape_configs") {
		for _, st := range list(sc, "static_configs") {
			jobs[str(sc, "job_name")] = append(jobs[str(sc, "job_name")], strs(st, "targets")...)
		}
	}
	for _, job := range []string{"nats", "otel-collector"} {
		if len(jobs[job]) == 0 {
			t.Errorf("no scrape job %q", job)
		}
	}
	// Each Loudly service is a job of its own name (the dashboards and alert rules select
	// job="<service>"), scraped where it listens.
	for _, s := range services.All {
		if want := []string{s.Name + ":" + strconv.Itoa(s.Port)}; !slices.Equal(jobs[s.Name], want) {
			t.Errorf("scrape job %q has targets %v, want %v", s.Name, jobs[s.Name], want)
		}
	}
	listenPorts := listenPorts()
	for _, target := range scrapeTargets(t) {
		host, port, err := net.SplitHostPort(target)
		if err != nil {
			t.Errorf("target %q: %v", target, err)
			continue
		}
		if _, ok := project.Services[host]; !ok && host != "localhost" {
			t.Errorf("target %q: no service %q in the compose file", target, host)
		}
		if !slices.Contains(listenPorts[host], port) {
			t.Errorf("target %q: %s listens on %v", target, host, listenPorts[host])
		}
	}
	// The rule file is read where the compose file mounts alerts/prometheus-rules.yaml.
	rules := strs(p, "rule_files")
	mounted := mountedAtSource(project, "prometheus", "alerts/prometheus-rules.yaml")
	if len(rules) != 1 || rules[0] != mounted {
		t.Errorf("rule_files %v, but alerts/prometheus-rules.yaml is mounted at %q", rules, mounted)
	}
	// Exemplars are kept (the point of the demo) and Tempo can remote-write its span metrics.
	cmd := project.Services["prometheus"].Command
	for _, flag := range []string{"--enable-feature=exemplar-storage", "--web.enable-remote-write-receiver"} {
		if !slices.Contains(cmd, flag) {
			t.Errorf("prometheus runs without %s", flag)
		}
	}
}

// mountedAtSource returns where a service mounts the repository path rel, or "".
func mountedAtSource(project *types.Project, service, rel string) string {
	abs, _ := filepath.Abs(filepath.Join(repoRoot, rel))
	for _, v := range project.Services[service].Volumes {
		if v.Source == abs {
			return v.Target
		}
	}
	return ""
}

// TestPrometheusConfigPassesPromtool runs Prometheus's own checker on the config. The
// rule file it names is the repository's alerts/prometheus-rules.yaml, mounted into the
// container; the check uses that file when it exists, and otherwise checks the config
// without it (saying so), since alerts/ is provided by other work.
func TestPrometheusConfigPassesPromtool(t *testing.T) {
	promtool := testenv.PromtoolPath(t)
	doc := readYAML(t, prometheusConfig)
	rules, _ := filepath.Abs(filepath.Join(repoRoot, "alerts", "prometheus-rules.yaml"))
	if _, err := os.Stat(rules); err == nil {
		doc["rule_files"] = []any{rules}
	} else {
		t.Logf("%s is not there yet: checking %s without rule_files", rules, prometheusConfig)
		delete(doc, "rule_files")
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "config", tmp).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

func TestLokiConfig(t *testing.T) {
	l := readYAML(t, lokiConfig)
	if get(l, "limits_config", "allow_structured_metadata") != true {
		t.Error("allow_structured_metadata must be on: OTLP logs keep trace_id as structured metadata")
	}
	// An empty list, not absent: Loki's default would add service_name to the lines the
	// services push (labelled service), and {service_name="order"} would show each line
	// twice, once per path.
	if v, ok := get(l, "limits_config").(map[string]any)["discover_service_name"]; !ok || len(v.([]any)) != 0 {
		t.Error("discover_service_name must be [] (see loki.yaml)")
	}
	schemas := list(l, "schema_config", "configs")
	last := schemas[len(schemas)-1]
	if str(last, "store") != "tsdb" || str(last, "schema") != "v13" {
		t.Errorf("schema %s/%s: OTLP ingestion and structured metadata need tsdb and v13", str(last, "store"), str(last, "schema"))
	}
	if fmt.Sprint(get(l, "server", "http_listen_port")) != "3100" {
		t.Errorf("Loki listens on %v; LOKI_URL, the collector and Grafana use 3100", get(l, "server", "http_listen_port"))
	}
	if !strings.HasPrefix(str(l, "common", "path_prefix"), "/loki") {
		t.Errorf("path_prefix %q is outside the loki-data volume at /loki", str(l, "common", "path_prefix"))
	}
}

func TestTempoConfig(t *testing.T) {
	tc := readYAML(t, tempoConfig)
	// Tempo 3 refuses the blocks of Tempo 2's ingester architecture.
	for _, gone := range []string{"ingester", "compactor", "ingester_client", "metrics_generator_client"} {
		if _, ok := tc[gone]; ok {
			t.Errorf("%s: Tempo 3 has no %q block and refuses to start with one", tempoConfig, gone)
		}
	}
	for proto, want := range map[string]string{"grpc": "0.0.0.0:4317", "http": "0.0.0.0:4318"} {
		if got := str(tc, "distributor", "receivers", "otlp", "protocols", proto, "endpoint"); got != want {
			t.Errorf("OTLP %s receiver on %q, want %q (reachable from the collector)", proto, got, want)
		}
	}
	if got := str(tc, "metrics_generator", "storage", "remote_write", 0, "url"); got != "http://prometheus:9090/api/v1/write" {
		t.Errorf("span metrics are written to %q, want Prometheus's remote-write receiver", got)
	}
	if get(tc, "metrics_generator", "storage", "remote_write", 0, "send_exemplars") != true {
		t.Error("span metrics should carry exemplars (send_exemplars)")
	}
	procs := strs(tc, "overrides", "defaults", "metrics_generator", "processors")
	for _, p := range []string{"service-graphs", "span-metrics"} {
		if !slices.Contains(procs, p) {
			t.Errorf("metrics generator processor %s is off: Grafana's service map and trace-to-metrics links need it", p)
		}
	}
	// Retention runs in Tempo 3's backend worker, against the worker's compaction config
	// (modules/backendworker: processRetentionJob hands w.cfg.Compactor to tempodb's
	// RetainWithConfig). A block_retention anywhere else parses and does nothing.
	if got := str(tc, "backend_worker", "compaction", "block_retention"); got != "72h" {
		t.Errorf("backend_worker.compaction.block_retention = %q, want the demo's 72h (Tempo's default keeps 14 days)", got)
	}
	var misplaced []string
	var walk func(v any, path string)
	walk = func(v any, path string) {
		if m, ok := v.(map[string]any); ok {
			for k, c := range m {
				if k == "block_retention" && path != ".backend_worker.compaction" {
					misplaced = append(misplaced, path+"."+k)
				}
				walk(c, path+"."+k)
			}
		}
	}
	walk(map[string]any(tc), "")
	if len(misplaced) > 0 {
		t.Errorf("block_retention at %v: the backend worker does not read it there", misplaced)
	}
	for _, path := range []string{
		str(tc, "storage", "trace", "wal", "path"),
		str(tc, "storage", "trace", "local", "path"),
		str(tc, "metrics_generator", "storage", "path"),
	} {
		if !strings.HasPrefix(path, "/var/tempo/") {
			t.Errorf("%q is outside the tempo-data volume at /var/tempo", path)
		}
	}
}

// provisionedUIDs are the datasource uids Grafana gets from datasources.yaml.
func provisionedUIDs(t *testing.T) map[string]yml {
	ds := readYAML(t, datasourcesFile)
	out := map[string]yml{}
	for _, d := range list(ds, "datasources") {
		out[str(d, "uid")] = d.(map[string]any)
	}
	return out
}

func TestGrafanaDatasources(t *testing.T) {
	ds := provisionedUIDs(t)
	want := map[string]string{"prometheus": "http://prometheus:9090", "tempo": "http://tempo:3200", "loki": "http://loki:3100"}
	for uid, u := range want {
		d, ok := ds[uid]
		if !ok {
			t.Errorf("no datasource with uid %q", uid)
			continue
		}
		if str(d, "type") != uid || str(d, "url") != u {
			t.Errorf("datasource %q: type %q url %q, want type %q url %q", uid, str(d, "type"), str(d, "url"), uid, u)
		}
	}
	if len(ds) != len(want) {
		t.Errorf("datasources %v, want exactly %v", sortedKeys(ds), sortedKeys(want))
	}

	// Metric exemplar -> trace, for both kinds of exemplar Prometheus stores: the services'
	// (label trace_id, otlptranslator.ExemplarTraceIDKey in the OpenTelemetry Prometheus exporter) and those Tempo's
	// metrics generator writes with its span metrics (label traceID, Tempo's
	// modules/generator/registry traceIDLabelName).
	dest := map[string]string{}
	for _, ex := range list(ds["prometheus"], "jsonData", "exemplarTraceIdDestinations") {
		dest[str(ex, "name")] = str(ex, "datasourceUid")
	}
	for _, label := range []string{"trace_id", "traceID"} {
		if dest[label] != "tempo" {
			t.Errorf("Prometheus exemplars labelled %s link to %q, want tempo (destinations %v)", label, dest[label], dest)
		}
	}
	// Trace -> logs, metrics, service map.
	tj := get(ds["tempo"], "jsonData")
	for path, uid := range map[string]string{
		"tracesToLogsV2": "loki", "tracesToMetrics": "prometheus", "serviceMap": "prometheus",
	} {
		if got := str(tj, path, "datasourceUid"); got != uid {
			t.Errorf("Tempo %s -> %q, want %q", path, got, uid)
		}
	}
	if get(tj, "tracesToLogsV2", "filterByTraceID") != true {
		t.Error("Tempo tracesToLogsV2 must filter by trace id")
	}
	// The services' JSON log lines are labelled service=<name>: the span's service.name
	// must map onto that label for the trace-to-logs query to find them.
	if tag := get(tj, "tracesToLogsV2", "tags", 0); str(tag, "key") != "service.name" || str(tag, "value") != "service" {
		t.Errorf("tracesToLogsV2 tags %v, want service.name -> service", tag)
	}

	// Log line -> trace: the derived field finds the trace id in a line exactly as the
	// services write it (slog's JSON handler, as pkg/telemetry configures it).
	var line bytes.Buffer
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	slog.New(slog.NewJSONHandler(&line, nil)).Info("decision", "service", "order",
		"outcome", "applied", "trace_id", traceID, "span_id", "00f067aa0ba902b7")
	var regexField yml
	for _, f := range list(ds["loki"], "jsonData", "derivedFields") {
		if str(f, "datasourceUid") != "tempo" {
			t.Errorf("derived field %q links to %q, want tempo", str(f, "name"), str(f, "datasourceUid"))
		}
		if str(f, "matcherType") != "label" {
			regexField = f.(map[string]any)
		}
	}
	if regexField == nil {
		t.Fatal("no Loki derived field matching the trace id in the line")
	}
	re, err := regexp.Compile(str(regexField, "matcherRegex"))
	if err != nil {
		t.Fatalf("derived field regex: %v", err)
	}
	if m := re.FindStringSubmatch(line.String()); len(m) != 2 || m[1] != traceID {
		t.Errorf("derived field %q finds %q in the services' log line %s", re, m, line.String())
	}
}

// Grafana expands $NAME and ${NAME} in provisioning files from its environment, so a
// ${__value.raw} or $__tags meant for Grafana itself must be written $$: otherwise it
// silently becomes an empty string. Alert-rule annotations are the exception: provisioning
// keeps them raw (grafana/grafana#54975), so a $$ there reaches the notifier's template
// engine and breaks it ({{ $labels.job }} is written as is).
func TestGrafanaProvisioningEscapesDollars(t *testing.T) {
	rules := filepath.Join(repoRoot, "alerts", "grafana-alerts.yaml")
	for _, f := range []string{datasourcesFile, dashboardsFile, contactPoints, policiesFile, rules} {
		b, err := os.ReadFile(f)
		if f == rules && os.IsNotExist(err) {
			continue // reported by TestEveryBindMountExists
		}
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		walkStrings(&doc, false, func(s *yaml.Node, annotation bool) {
			for _, run := range regexp.MustCompile(`\$+`).FindAllString(s.Value, -1) {
				switch {
				case annotation && len(run) > 1:
					t.Errorf("%s:%d: annotation %q: provisioning keeps annotations raw; write a single $", f, s.Line, s.Value)
				case !annotation && len(run)%2 == 1:
					t.Errorf("%s:%d: %q: a single $ is an environment variable to Grafana; write $$", f, s.Line, s.Value)
				}
			}
		})
	}
}

// walkStrings calls fn with every scalar value under n, and whether it is the value of an
// alert rule's annotation.
func walkStrings(n *yaml.Node, annotation bool, fn func(s *yaml.Node, annotation bool)) {
	switch n.Kind {
	case yaml.ScalarNode:
		fn(n, annotation)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkStrings(n.Content[i+1], annotation || n.Content[i].Value == "annotations", fn)
		}
	default:
		for _, c := range n.Content {
			walkStrings(c, annotation, fn)
		}
	}
}

func TestGrafanaAlerting(t *testing.T) {
	cp := readYAML(t, contactPoints)
	pol := readYAML(t, policiesFile)
	name := str(cp, "contactPoints", 0, "name")
	if got := str(pol, "policies", 0, "receiver"); got != name {
		t.Errorf("the notification policy routes to %q, the contact point is %q", got, name)
	}
	hook := get(cp, "contactPoints", 0, "receivers", 0)
	if str(hook, "type") != "webhook" {
		t.Errorf("contact point type %q, want webhook", str(hook, "type"))
	}
	u, err := url.Parse(str(hook, "settings", "url"))
	if err != nil {
		t.Fatal(err)
	}
	project := loadProject(t)
	receiver, ok := project.Services[u.Hostname()]
	if !ok {
		t.Fatalf("the webhook goes to %s, which is not a service", u.Host)
	}
	if got := deref(receiver.Environment["HTTP_PORT"]); got != u.Port() {
		t.Errorf("the webhook goes to port %s, %s listens on %s", u.Port(), u.Hostname(), got)
	}
	// Alert rules are provisioned into the same directory as these two files.
	for _, f := range []string{contactPoints, policiesFile} {
		if target := mountedAt(project, "grafana", "/etc/grafana/provisioning/alerting/"+filepath.Base(f)); target == "" {
			t.Errorf("%s is not mounted into Grafana's alerting provisioning directory", f)
		}
	}
}

func TestGrafanaDashboardsProvider(t *testing.T) {
	d := readYAML(t, dashboardsFile)
	project := loadProject(t)
	path := str(d, "providers", 0, "options", "path")
	root, _ := filepath.Abs(filepath.Join(repoRoot, "dashboards"))
	if got := mountedAt(project, "grafana", path); got != root {
		t.Errorf("the dashboards provider reads %s, where Grafana has %q mounted, want the repository's dashboards/", path, got)
	}
	if str(d, "providers", 0, "type") != "file" {
		t.Error("the dashboards provider must be of type file")
	}
}

// The dashboards and alert rules of the repository name datasources by uid; each uid must
// be one this stack provisions, or the panel or rule shows "datasource not found".
func TestDashboardsAndAlertsUseProvisionedDatasources(t *testing.T) {
	provisioned := provisionedUIDs(t)
	// Uids Grafana provides itself, and template variables resolved at view time.
	builtin := func(uid string) bool {
		return uid == "__expr__" || uid == "grafana" || uid == "-- Grafana --" || uid == "-- Mixed --" ||
			uid == "-- Dashboard --" || strings.HasPrefix(uid, "$")
	}
	var files []string
	for _, pattern := range []string{"dashboards/*.json", "alerts/*.yaml", "alerts/*.yml"} {
		m, _ := filepath.Glob(filepath.Join(repoRoot, pattern))
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("found no dashboards/*.json and no alerts/*.yaml to check; they are provided by other work (see TestEveryBindMountExists)")
	}
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if strings.HasSuffix(f, ".json") {
			err = json.Unmarshal(b, &doc)
		} else {
			err = yaml.Unmarshal(b, &doc)
		}
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, uid := range datasourceUIDs(doc) {
			checked++
			if _, ok := provisioned[uid]; !ok && !builtin(uid) {
				t.Errorf("%s uses datasource uid %q, which is not provisioned (have %v)", f, uid, sortedKeys(provisioned))
			}
		}
	}
	t.Logf("checked %d datasource references in %d files", checked, len(files))

	home := filepath.Join(repoRoot, "dashboards", "business-throughput.json")
	if b, err := os.ReadFile(home); err == nil {
		var d struct{ UID string }
		if err := json.Unmarshal(b, &d); err != nil || d.UID != "loudly-business" {
			t.Errorf("%s: uid %q, want loudly-business (the home dashboard): %v", home, d.UID, err)
		}
	}
}

// datasourceUIDs finds every datasource reference in a dashboard or alert rule file:
// "datasource": {"uid": ...} objects, and datasourceUid keys.
func datasourceUIDs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch {
			case k == "datasource":
				if uid := str(e, "uid"); uid != "" {
					out = append(out, uid)
				}
			case k == "datasourceUid":
				if uid, ok := e.(string); ok {
					out = append(out, uid)
				}
			}
			out = append(out, datasourceUIDs(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, datasourceUIDs(e)...)
		}
	}
	return out
}

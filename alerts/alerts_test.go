package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"loudly/dashboards"
	"loudly/internal/generated"
	"loudly/internal/testenv"
	"loudly/services"
	"loudly/services/drill"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The committed files are what Prometheus and Grafana load; they must be exactly what the
// definitions in rules.go render.
func TestGeneratedFilesAreInSync(t *testing.T) { generated.CheckInSync(t, "alerts", Files) }

// promtool is Prometheus's own checker: the rule file must load, and every rule must fire
// on its failure scenario and stay quiet on healthy traffic.
func TestPromtool_ChecksAndUnitTestsTheRules(t *testing.T) {
	bin := testenv.PromtoolPath(t)
	for _, args := range [][]string{
		{"check", "rules", "prometheus-rules.yaml"},
		{"test", "rules", "prometheus-rules.test.yaml"},
	} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

var humanized = regexp.MustCompile(`\{\{ \$value \| humanize(Percentage|Duration)? \}\}`)

func TestRules_AreActionable(t *testing.T) {
	rules := Rules(Production)
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.Name] {
			t.Errorf("%s defined twice", r.Name)
		}
		seen[r.Name] = true
		if !strings.HasPrefix(r.Name, "Loudly") || r.Summary == "" {
			t.Errorf("%s: name must start with Loudly and the rule needs a summary", r.Name)
		}
		if !humanized.MatchString(r.Description) {
			t.Errorf("%s: description %q does not show the value ({{ $value | humanize… }})", r.Name, r.Description)
		}
		if r.Severity != Critical && r.Severity != Warning {
			t.Errorf("%s: severity %q, want critical or warning", r.Name, r.Severity)
		}
		if !slices.Contains(Groups, r.Group) {
			t.Errorf("%s: group %q is not rendered", r.Name, r.Group)
		}
		if r.Op != ">" && r.Op != "<" {
			t.Errorf("%s: op %q", r.Name, r.Op)
		}
		if len(r.Fires.Series) == 0 {
			t.Errorf("%s: no failure scenario", r.Name)
		}
		if _, err := dashboards.PanelID(r.Dashboard, r.Panel); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
		runbook, err := os.ReadFile(filepath.Join("..", r.RunbookURL()))
		if err != nil {
			t.Errorf("%s: runbook_url %s: %v", r.Name, r.RunbookURL(), err)
			continue
		}
		for _, must := range []string{"# " + r.Name, r.Panel, "dlq"} {
			if !strings.Contains(string(runbook), must) {
				t.Errorf("%s: runbook does not mention %q", r.Name, must)
			}
		}
		// The runbook shows the alert's expression as it is (indentation aside).
		if !strings.Contains(strings.Join(strings.Fields(string(runbook)), " "), strings.Join(strings.Fields(r.Expr()), " ")) {
			t.Errorf("%s: runbook does not show the alert's PromQL:\n%s", r.Name, r.Expr())
		}
	}
	index, err := os.ReadFile("../" + RunbookDir + "README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range Names(rules) {
		if !strings.Contains(string(index), "("+n+".md)") {
			t.Errorf("docs/runbooks/README.md does not link %s", n)
		}
	}
}

// Every service of services.All gets its down alert, about its own job, pointing at its
// own panel: a service added to the list is covered by the next go generate.
func TestRules_EveryServiceHasItsDownAlert(t *testing.T) {
	rules := Rules(Production)
	for _, s := range services.All {
		i := slices.IndexFunc(rules, func(r Rule) bool { return r.Name == ServiceDownAlert(s) })
		if i < 0 {
			t.Errorf("%s: no rule %s", s.Name, ServiceDownAlert(s))
			continue
		}
		r := rules[i]
		if !strings.Contains(r.Expr(), `up{job="`+s.Name+`"}`) || r.Panel != dashboards.ServiceUpPanel(s.Name) || r.Severity != Critical {
			t.Errorf("%s: expr %s, panel %q, severity %s", r.Name, r.Expr(), r.Panel, r.Severity)
		}
	}
}

// The drills of services/drill name the alerts they teach; each must exist.
func TestRules_CoverEveryAlertTheDrillsTeach(t *testing.T) {
	names := Names(Rules(Production))
	for _, s := range drill.Catalog {
		for _, a := range append(slices.Clone(s.Alerts), s.Quiet...) {
			if !slices.Contains(names, a) {
				t.Errorf("drill %s names alert %s, which no rule defines", s.Name, a)
			}
		}
	}
}

// Both files carry the same rules with the same PromQL, and Grafana's queries go to the
// provisioned Prometheus datasource.
func TestRuleFiles_AgreeAndUseTheProvisionedDatasources(t *testing.T) {
	var prom struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	readYAML(t, "prometheus-rules.yaml", &prom)
	var graf struct {
		APIVersion int `yaml:"apiVersion"`
		Groups     []struct {
			Name     string
			Folder   string
			Interval string
			Rules    []struct {
				UID         string
				Title       string
				Condition   string
				For         string
				NoDataState string `yaml:"noDataState"`
				Data        []struct {
					RefID         string         `yaml:"refId"`
					DatasourceUID string         `yaml:"datasourceUid"`
					Model         map[string]any `yaml:"model"`
				}
				Annotations map[string]string
				Labels      map[string]string
			}
		}
	}
	readYAML(t, "grafana-alerts.yaml", &graf)
	if graf.APIVersion != 1 {
		t.Errorf("grafana-alerts.yaml apiVersion %d, want 1", graf.APIVersion)
	}

	promExpr := map[string]string{}
	for _, g := range prom.Groups {
		for _, r := range g.Rules {
			promExpr[r.Alert] = r.Expr
			if r.Labels["severity"] == "" || r.Annotations["runbook_url"] != RunbookDir+r.Alert+".md" {
				t.Errorf("prometheus %s: labels %v, runbook_url %q", r.Alert, r.Labels, r.Annotations["runbook_url"])
			}
		}
	}
	grafNames := map[string]bool{}
	for _, g := range graf.Groups {
		if g.Folder != GrafanaFolder || g.Interval == "" {
			t.Errorf("grafana group %s: folder %q, interval %q", g.Name, g.Folder, g.Interval)
		}
		for _, r := range g.Rules {
			grafNames[r.Title] = true
			if len(r.Data) != 3 || r.Condition != "C" || r.NoDataState != "OK" {
				t.Fatalf("grafana %s: %d queries, condition %s, noDataState %s", r.Title, len(r.Data), r.Condition, r.NoDataState)
			}
			a, b, c := r.Data[0], r.Data[1], r.Data[2]
			ds, _ := a.Model["datasource"].(map[string]any)
			if a.DatasourceUID != dashboards.PrometheusUID || ds["uid"] != dashboards.PrometheusUID || a.Model["instant"] != true {
				t.Errorf("grafana %s: query A must be an instant query of datasource uid prometheus: %v", r.Title, a)
			}
			if a.Model["expr"] != promExpr[r.Title] {
				t.Errorf("grafana %s: expr\n%v\nprometheus:\n%s", r.Title, a.Model["expr"], promExpr[r.Title])
			}
			if b.DatasourceUID != "__expr__" || b.Model["type"] != "reduce" || c.DatasourceUID != "__expr__" || c.Model["type"] != "threshold" {
				t.Errorf("grafana %s: B must reduce A and C compare B with the threshold: %v %v", r.Title, b, c)
			}
			if d := r.Annotations["description"]; !strings.Contains(d, "{{ $values.B.Value | humanize") {
				t.Errorf("grafana %s: description %q does not show $values.B.Value", r.Title, d)
			}
		}
	}
	for name := range promExpr {
		if !grafNames[name] {
			t.Errorf("%s is in prometheus-rules.yaml but not in grafana-alerts.yaml", name)
		}
	}
	if len(grafNames) != len(promExpr) || len(promExpr) != len(Rules(Production)) {
		t.Errorf("prometheus %d rules, grafana %d, definitions %d", len(promExpr), len(grafNames), len(Rules(Production)))
	}

	// Every datasource reference is one of the provisioned uids (or Grafana's expressions).
	allowed := map[string]bool{"prometheus": true, "tempo": true, "loki": true, "__expr__": true}
	var node yaml.Node
	readYAML(t, "grafana-alerts.yaml", &node)
	walkYAML(&node, func(key string, v *yaml.Node) {
		if (key == "datasourceUid" || key == "uid") && v.Kind == yaml.ScalarNode {
			if strings.HasPrefix(v.Value, "loudly-") {
				return // rule uids
			}
			if !allowed[v.Value] {
				t.Errorf("grafana-alerts.yaml: datasource uid %q", v.Value)
			}
		}
	})
}

func TestProfile_ScalesWindowsAndForButNotThresholds(t *testing.T) {
	prod, fast := Rules(Production), Rules(Fast)
	for i := range prod {
		if prod[i].Threshold != fast[i].Threshold || prod[i].Name != fast[i].Name {
			t.Errorf("%s: threshold changed with the profile", prod[i].Name)
		}
		if prod[i].For > 0 && fast[i].For*10 > prod[i].For {
			t.Errorf("%s: fast for %s is not much shorter than %s", prod[i].Name, fast[i].For, prod[i].For)
		}
	}
	for _, c := range []struct {
		in   string
		want string
	}{{"5m", "10s"}, {"1h", "2m"}, {"6h", "12m"}, {"10m", "20s"}} {
		d, _ := time.ParseDuration(c.in)
		if got := Fast.w(d); got != c.want {
			t.Errorf("Fast.w(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := promDuration(90 * time.Minute); got != "1h30m" {
		t.Errorf("promDuration(90m) = %s", got)
	}
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func walkYAML(n *yaml.Node, fn func(key string, v *yaml.Node)) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			fn(n.Content[i].Value, n.Content[i+1])
		}
	}
	for _, c := range n.Content {
		walkYAML(c, fn)
	}
}

// Package alerts defines Loudly's alert rules once, in Go, and renders them for both
// places they run:
//
//   - prometheus-rules.yaml: a Prometheus rule file (alerting rules);
//   - grafana-alerts.yaml: Grafana alerting file provisioning (folder "Loudly"), each rule
//     the same PromQL against the datasource uid prometheus, reduced to its last value and
//     compared with the same threshold;
//   - prometheus-rules.test.yaml: promtool unit tests, one failure scenario per rule plus
//     a day of healthy traffic on which every rule must stay quiet.
//
// The files are committed; go generate ./alerts/... writes them and
// TestGeneratedFilesAreInSync fails when they differ from this code.
//
// A Profile sets the rules' time constants. The committed files use Production; the live
// test renders the same rules with every window and "for" scaled down (Fast) and shows
// them firing in a real Prometheus within seconds of the failure they exist for.
package alerts

//go:generate go run ./gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"loudly/internal/generated"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/alerting"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/expr"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"go.yaml.in/yaml/v3"

	"loudly/dashboards"
)

// Severities. A critical alert pages; a warning opens a ticket.
const (
	Critical = "critical"
	Warning  = "warning"
)

// RunbookDir holds one runbook per alert, <alert name>.md, relative to the repository root.
const RunbookDir = "docs/runbooks/"

// Rule is one alert, in the terms both Prometheus and Grafana need.
//
// Its condition is Value Op Threshold, then Also: Value is the number the alert is about
// (it becomes {{ $value }}), Also are further conditions ("and …", "unless …") that
// restrict when it counts. Expr joins them; both files carry Expr unchanged.
type Rule struct {
	Name      string // alert name; its runbook is docs/runbooks/<Name>.md
	Group     string
	Severity  string
	Value     string // PromQL
	Op        string // ">" or "<"
	Threshold float64
	Also      string // PromQL appended after the comparison, or ""
	For       time.Duration

	// Summary and Description are Prometheus templates: {{ $labels.x }}, and the value
	// through a humanize function: {{ $value | humanizePercentage }}. The Grafana file
	// gets them with $value rewritten to Grafana's $values.B.Value.
	Summary     string
	Description string

	Dashboard string // uid of the dashboard that shows the problem
	Panel     string // title of its panel

	// Fires is the failure the rule exists for, as promtool input (Production profile).
	Fires Scenario
}

// Scenario is a promtool test: input series, and the alert expected at a time.
type Scenario struct {
	Series []Series
	At     time.Duration
	Labels map[string]string // the alert's labels besides alertname and severity
	Value  string            // {{ $value }} as the description's humanize function prints it
	Quiet  []string          // other alerts that must not fire at At

	// ResolvedAt, when set, is a later time at which the alert must have resolved.
	ResolvedAt time.Duration
}

// Series is one promtool input series: a selector and its values in promtool notation.
type Series struct{ Selector, Values string }

// Expr is the alert's complete PromQL condition.
func (r Rule) Expr() string {
	e := r.Value + " " + r.Op + " " + num(r.Threshold)
	if r.Also != "" {
		e += "\n" + r.Also
	}
	return e
}

// RunbookURL is the repository-relative path of the rule's runbook.
func (r Rule) RunbookURL() string { return RunbookDir + r.Name + ".md" }

// DashboardURL is the Grafana path of the panel that shows the problem.
func (r Rule) DashboardURL() string {
	id, _ := dashboards.PanelID(r.Dashboard, r.Panel)
	return fmt.Sprintf("/d/%s?viewPanel=%d", r.Dashboard, id)
}

func (r Rule) annotations() map[string]string {
	return map[string]string{
		"summary":     r.Summary,
		"description": r.Description,
		"runbook_url": r.RunbookURL(),
		"dashboard":   r.DashboardURL(),
	}
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Profile sets the time constants of the rules: the range of every rate and the "for" of
// every alert are multiplied by Scale (and rounded to whole seconds). Thresholds do not
// change.
type Profile struct {
	Name  string
	Scale float64
}

var (
	// Production is the profile of the committed rule files.
	Production = Profile{Name: "production", Scale: 1}
	// Fast is for tests against a live Prometheus scraping every second: 5m becomes 10s.
	Fast = Profile{Name: "fast", Scale: 1.0 / 30}
)

func (p Profile) dur(d time.Duration) time.Duration {
	s := time.Duration(float64(d) * p.Scale).Round(time.Second)
	if d > 0 && s < time.Second {
		s = time.Second
	}
	return s
}

// w is a window in PromQL notation.
func (p Profile) w(d time.Duration) string { return promDuration(p.dur(d)) }

// promDuration writes d the way Prometheus reads it: 5m, 1h, 10s, 1h30m.
func promDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		d    time.Duration
		unit string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.unit)
			d -= n * u.d
		}
	}
	return b.String()
}

// Groups lists the rule groups in file order.
var Groups = []string{"loudly-business", "loudly-pipeline", "loudly-slo", "loudly-services"}

// File is one generated file: its name in this directory and its content.
type File = generated.File

const header = "# Generated by `go generate ./alerts/...` from alerts/rules.go. DO NOT EDIT.\n"

// Files renders the committed files: both rule files and the promtool tests.
func Files() ([]File, error) {
	rules := Rules(Production)
	prom, err := PrometheusRules(rules)
	if err != nil {
		return nil, err
	}
	graf, err := GrafanaRules(rules)
	if err != nil {
		return nil, err
	}
	tests, err := PromtoolTests(rules, "prometheus-rules.yaml")
	if err != nil {
		return nil, err
	}
	return []File{
		{Name: "prometheus-rules.yaml", Data: prom},
		{Name: "grafana-alerts.yaml", Data: graf},
		{Name: "prometheus-rules.test.yaml", Data: tests},
	}, nil
}

// Prometheus rule file.

type promFile struct {
	Groups []promGroup `yaml:"groups"`
}

type promGroup struct {
	Name  string     `yaml:"name"`
	Rules []promRule `yaml:"rules"`
}

type promRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// PrometheusRules renders rules as a Prometheus rule file.
func PrometheusRules(rules []Rule) ([]byte, error) {
	var f promFile
	for _, g := range Groups {
		pg := promGroup{Name: g}
		for _, r := range rules {
			if r.Group != g {
				continue
			}
			pr := promRule{Alert: r.Name, Expr: r.Expr(), Labels: map[string]string{"severity": r.Severity}, Annotations: r.annotations()}
			if r.For > 0 {
				pr.For = promDuration(r.For)
			}
			pg.Rules = append(pg.Rules, pr)
		}
		f.Groups = append(f.Groups, pg)
	}
	return marshalYAML(header, f)
}

// Grafana alerting file provisioning. The rule's data queries are the SDK's alerting
// queries; the envelope (apiVersion, groups, folder) is the provisioning file format,
// which the SDK does not model.

type grafanaFile struct {
	APIVersion int            `json:"apiVersion"`
	Groups     []grafanaGroup `json:"groups"`
}

type grafanaGroup struct {
	OrgID    int           `json:"orgId"`
	Name     string        `json:"name"`
	Folder   string        `json:"folder"`
	Interval string        `json:"interval"`
	Rules    []grafanaRule `json:"rules"`
}

type grafanaRule struct {
	UID          string            `json:"uid"`
	Title        string            `json:"title"`
	Condition    string            `json:"condition"`
	Data         []alerting.Query  `json:"data"`
	DashboardUID string            `json:"dashboardUid"`
	PanelID      uint32            `json:"panelId"`
	NoDataState  string            `json:"noDataState"`
	ExecErrState string            `json:"execErrState"`
	For          string            `json:"for"`
	Annotations  map[string]string `json:"annotations"`
	Labels       map[string]string `json:"labels"`
	IsPaused     bool              `json:"isPaused"`
}

// GrafanaFolder is the folder the provisioned rules live in.
const GrafanaFolder = "Loudly"

// GrafanaRules renders rules as Grafana alerting provisioning. Each rule has three
// steps: A, the rule's PromQL as an instant query; B, A reduced to its last value per
// series; C, B compared with the threshold (the condition). No data means the condition
// does not hold (the PromQL returns only series that breach), so noDataState is OK.
//
// Annotations are written as Grafana's notifier executes them: Grafana's file provisioning
// expands environment variables in most fields of a rule ("$$" being a literal "$"), but
// not in annotations, which it keeps raw since Grafana 9.1 (grafana/grafana#54975), so a
// "$$" there would reach the template engine and break it.
func GrafanaRules(rules []Rule) ([]byte, error) {
	f := grafanaFile{APIVersion: 1}
	exprDS := common.DataSourceRef{Type: ptr("__expr__"), Uid: ptr("__expr__")}
	promDS := common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr(dashboards.PrometheusUID)}
	for _, g := range Groups {
		gg := grafanaGroup{OrgID: 1, Name: g, Folder: GrafanaFolder, Interval: "1m"}
		for _, r := range rules {
			if r.Group != g {
				continue
			}
			op := map[string]expr.ExprTypeThresholdConditionsEvaluatorType{
				">": expr.ExprTypeThresholdConditionsEvaluatorTypeGt, "<": expr.ExprTypeThresholdConditionsEvaluatorTypeLt,
			}[r.Op]
			var data []alerting.Query
			for _, q := range []*alerting.QueryBuilder{
				alerting.NewQueryBuilder("A").DatasourceUid(dashboards.PrometheusUID).RelativeTimeRange(600, 0).
					Model(prometheus.NewDataqueryBuilder().RefId("A").Datasource(promDS).Expr(r.Expr()).
						Instant().EditorMode(prometheus.QueryEditorModeCode).IntervalMs(1000).MaxDataPoints(43200)),
				alerting.NewQueryBuilder("B").DatasourceUid("__expr__").
					Model(expr.NewExprBuilder().TypeReduce(expr.NewTypeReduceBuilder().RefId("B").Datasource(exprDS).
						Expression("A").Reducer(expr.TypeReduceReducerLast).
						Settings(expr.NewExprTypeReduceSettingsBuilder().Mode(expr.ExprTypeReduceSettingsModeDropNN)))),
				alerting.NewQueryBuilder("C").DatasourceUid("__expr__").
					Model(expr.NewExprBuilder().TypeThreshold(expr.NewTypeThresholdBuilder().RefId("C").Datasource(exprDS).
						Expression("B").Conditions([]cog.Builder[expr.ExprTypeThresholdConditions]{
						expr.NewExprTypeThresholdConditionsBuilder().Evaluator(
							expr.NewExprTypeThresholdConditionsEvaluatorBuilder().Type(op).Params([]float64{r.Threshold})),
					}))),
			} {
				built, err := q.Build()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", r.Name, err)
				}
				data = append(data, built)
			}
			panelID, err := dashboards.PanelID(r.Dashboard, r.Panel)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.Name, err)
			}
			ann := map[string]string{}
			for k, v := range r.annotations() {
				ann[k] = GrafanaTemplate(v)
			}
			gg.Rules = append(gg.Rules, grafanaRule{
				UID: GrafanaUID(r.Name), Title: r.Name, Condition: "C", Data: data,
				DashboardUID: r.Dashboard, PanelID: panelID,
				NoDataState: "OK", ExecErrState: "Error", For: promDuration(r.For),
				Annotations: ann, Labels: map[string]string{"severity": r.Severity},
			})
		}
		f.Groups = append(f.Groups, gg)
	}
	// Through JSON, so the SDK's types keep their field names, then to YAML in that order.
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	var node yaml.Node
	if err := yaml.Unmarshal(b, &node); err != nil {
		return nil, err
	}
	plain(&node)
	return marshalYAML(header, &node)
}

// GrafanaTemplate rewrites a Prometheus annotation template for Grafana: the value of
// the condition's reduced series is $values.B.Value (Grafana's $value is the whole
// evaluation string, not a number). Nothing is escaped: provisioning keeps annotations
// as written.
func GrafanaTemplate(s string) string {
	return strings.ReplaceAll(s, "$value", "$values.B.Value")
}

// GrafanaUID is the uid of the Grafana rule for an alert name: LoudlyNoOrders is
// loudly-no-orders.
func GrafanaUID(name string) string {
	var b strings.Builder
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// plain drops the JSON quoting and flow styles, so the YAML reads like hand-written YAML.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}

func marshalYAML(header string, v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// promtool unit tests.

type testFile struct {
	RuleFiles          []string    `yaml:"rule_files"`
	EvaluationInterval string      `yaml:"evaluation_interval"`
	Tests              []testGroup `yaml:"tests"`
}

type testGroup struct {
	Name            string       `yaml:"name"`
	Interval        string       `yaml:"interval"`
	InputSeries     []testInput  `yaml:"input_series"`
	AlertRuleTests  []alertTest  `yaml:"alert_rule_test"`
	PromqlExprTests []promqlTest `yaml:"promql_expr_test,omitempty"`
}

type promqlTest struct {
	Expr       string      `yaml:"expr"`
	EvalTime   string      `yaml:"eval_time"`
	ExpSamples []expSample `yaml:"exp_samples"`
}

type expSample struct {
	Labels string  `yaml:"labels"`
	Value  float64 `yaml:"value"`
}

type testInput struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertTest struct {
	EvalTime  string     `yaml:"eval_time"`
	Alertname string     `yaml:"alertname"`
	ExpAlerts []expAlert `yaml:"exp_alerts"`
}

type expAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// PromtoolTests renders the unit tests of rules (rendered into ruleFile): the healthy
// day, on which no rule may fire, then each rule's failure scenario, then the drill
// guides' claims at the demo's load (DemoClaims).
func PromtoolTests(rules []Rule, ruleFile string) ([]byte, error) {
	f := testFile{RuleFiles: []string{ruleFile}, EvaluationInterval: "1m"}
	healthy := testGroup{Name: "healthy traffic: no alert fires", Interval: "1m"}
	for _, s := range Healthy {
		healthy.InputSeries = append(healthy.InputSeries, testInput{s.Selector, s.Values})
	}
	for _, at := range HealthyChecks {
		for _, r := range rules {
			healthy.AlertRuleTests = append(healthy.AlertRuleTests,
				alertTest{EvalTime: promDuration(at), Alertname: r.Name, ExpAlerts: []expAlert{}})
		}
	}
	f.Tests = append(f.Tests, healthy)
	for _, r := range rules {
		s := r.Fires
		g := testGroup{Name: r.Name + " fires on the failure it exists for", Interval: "1m"}
		for _, in := range s.Series {
			g.InputSeries = append(g.InputSeries, testInput{in.Selector, in.Values})
		}
		labels := maps.Clone(s.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels["severity"] = r.Severity
		ann := map[string]string{}
		for k, v := range r.annotations() {
			out, err := render(v, s.Labels, s.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: annotation %s: %w", r.Name, k, err)
			}
			ann[k] = out
		}
		g.AlertRuleTests = append(g.AlertRuleTests, alertTest{
			EvalTime: promDuration(s.At), Alertname: r.Name,
			ExpAlerts: []expAlert{{ExpLabels: labels, ExpAnnotations: ann}},
		})
		for _, q := range s.Quiet {
			g.AlertRuleTests = append(g.AlertRuleTests, alertTest{EvalTime: promDuration(s.At), Alertname: q, ExpAlerts: []expAlert{}})
		}
		if s.ResolvedAt > 0 {
			g.AlertRuleTests = append(g.AlertRuleTests, alertTest{EvalTime: promDuration(s.ResolvedAt), Alertname: r.Name, ExpAlerts: []expAlert{}})
		}
		f.Tests = append(f.Tests, g)
	}
	f.Tests = append(f.Tests, claimTests(demoClaims(rules))...)
	return marshalYAML(header, f)
}

// render executes an annotation template the way Prometheus does, with labels, and with
// every humanize function printing the scenario's expected value.
func render(text string, labels map[string]string, value string) (string, error) {
	show := func(any) string { return value }
	t, err := template.New("").Funcs(template.FuncMap{
		"humanize": show, "humanizePercentage": show, "humanizeDuration": show,
	}).Parse("{{$labels := .Labels}}{{$value := .Value}}" + text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = t.Execute(&b, map[string]any{"Labels": labels, "Value": value})
	return b.String(), err
}

// Names lists the alert names of rules, sorted.
func Names(rules []Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

func ptr[T any](v T) *T { return &v }

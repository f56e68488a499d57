// Package dashboards builds Loudly's Grafana dashboards in Go, with the Grafana Foundation
// SDK's builders. The JSON files beside this file are its output: Grafana provisions them
// as they are, reviewers read them in diffs, and TestGeneratedFilesAreInSync fails when
// they no longer match this code.
//
// Two dashboards, one per question an on-call engineer asks:
//
//   - business-throughput.json (uid loudly-business): are orders getting through? Accepted
//     against settled, the status split, the success SLI and its error-budget burn,
//     unsettled orders, dead letters, every decision by reason with exemplars, settlement
//     latency, and the log line of every decision that was not "applied".
//   - consumer-internals.json (uid loudly-consumers): why not? JetStream consumer state,
//     the outboxes, PostgreSQL, HTTP, the Go runtime and the telemetry pipeline itself.
//
// Datasources are referenced by the fixed uids prometheus, tempo and loki, which the
// Grafana provisioning of deploy/compose creates.
package dashboards

//go:generate go run ./gen

import (
	"encoding/json"
	"fmt"
	"loudly/internal/generated"
	"net/url"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// Dashboard uids: links between the dashboards, alert rules and the README use them.
const (
	BusinessUID  = "loudly-business"
	ConsumersUID = "loudly-consumers"
)

// Datasource uids, fixed by the Grafana provisioning.
const (
	PrometheusUID = "prometheus"
	TempoUID      = "tempo"
	LokiUID       = "loki"
)

// File is one generated file: its name in this directory and its content.
type File = generated.File

// Files renders every dashboard as the JSON committed in this directory.
func Files() ([]File, error) {
	var files []File
	for _, d := range []struct {
		name  string
		build func() (dashboard.Dashboard, error)
	}{
		{"business-throughput.json", Business},
		{"consumer-internals.json", Consumers},
	} {
		dash, err := d.build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		b, err := json.MarshalIndent(dash, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		files = append(files, File{Name: d.name, Data: append(b, '\n')})
	}
	return files, nil
}

// PanelID returns the id of the panel titled title on the dashboard with uid, so alert
// rules can point at the panel that shows what they measure.
func PanelID(uid, title string) (uint32, error) {
	build := map[string]func() (dashboard.Dashboard, error){BusinessUID: Business, ConsumersUID: Consumers}[uid]
	if build == nil {
		return 0, fmt.Errorf("no dashboard with uid %q", uid)
	}
	d, err := build()
	if err != nil {
		return 0, err
	}
	for _, p := range d.Panels {
		if p.Panel != nil && p.Panel.Title != nil && *p.Panel.Title == title {
			return *p.Panel.Id, nil
		}
	}
	return 0, fmt.Errorf("dashboard %s has no panel titled %q", uid, title)
}

// finish gives every panel and row a stable id in layout order (Grafana needs unique ids
// for panel links and alert annotations) and drops the links' "placement" the SDK sets by
// default, so dashboard links show in the top bar on every Grafana version.
func finish(b *dashboard.DashboardBuilder) (dashboard.Dashboard, error) {
	d, err := b.Build()
	if err != nil {
		return d, err
	}
	for i := range d.Panels {
		id := uint32(i + 1)
		switch p := d.Panels[i]; {
		case p.Panel != nil:
			p.Panel.Id = &id
			if p.Panel.FieldConfig != nil {
				for j := range p.Panel.FieldConfig.Defaults.Links {
					p.Panel.FieldConfig.Defaults.Links[j].Placement = nil
				}
			}
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	return d, nil
}

func ref(typ, uid string) common.DataSourceRef { return common.DataSourceRef{Type: &typ, Uid: &uid} }

var (
	promDS = ref("prometheus", PrometheusUID)
	lokiDS = ref("loki", LokiUID)
)

// query is a Prometheus range query of a panel.
func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(promDS).Expr(expr).LegendFormat(legend).Range()
}

// targets names the queries A, B, C… in order, as Grafana would.
func targets(qs ...*prometheus.DataqueryBuilder) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, q := range qs {
		out[i] = q.RefId(string(rune('A' + i)))
	}
	return out
}

// explore builds the URL of a Grafana Explore pane running query on datasource ds.
// Placeholders map tokens in the encoded URL to Grafana variables (such as
// ${__field.labels.reason}) that must stay unencoded for Grafana to interpolate them.
func explore(ds common.DataSourceRef, q map[string]any, from, to string, placeholders map[string]string) string {
	q["refId"] = "A"
	q["datasource"] = map[string]string{"type": *ds.Type, "uid": *ds.Uid}
	pane := map[string]any{"a": map[string]any{
		"datasource": *ds.Uid,
		"queries":    []any{q},
		"range":      map[string]string{"from": from, "to": to},
	}}
	b, _ := json.Marshal(pane)
	u := "/explore?schemaVersion=1&orgId=1&panes=" + url.QueryEscape(string(b))
	for token, v := range placeholders {
		u = strings.ReplaceAll(u, token, v)
	}
	return u
}

// tempoSearch is an Explore URL running a TraceQL search.
func tempoSearch(traceQL, from, to string, placeholders map[string]string) string {
	return explore(ref("tempo", TempoUID), map[string]any{"queryType": "traceql", "query": traceQL, "limit": 50},
		from, to, placeholders)
}

// lokiSearch is an Explore URL running a LogQL query.
func lokiSearch(logQL, from, to string, placeholders map[string]string) string {
	return explore(lokiDS, map[string]any{"expr": logQL, "queryType": "range"}, from, to, placeholders)
}

// NonHappyDecisions is the LogQL of every decision log line whose outcome is not
// "applied", from both services.
const NonHappyDecisions = `{service=~".+"} | json | msg="decision" | outcome!="applied"`

// link is a dashboard (top bar) link.
func link(title, tooltip, icon, u string, keepTime bool) *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder(title).Type(dashboard.DashboardLinkTypeLink).
		Url(u).Tooltip(tooltip).Icon(icon).KeepTime(keepTime).TargetBlank(false)
}

// dataLink is a link on the series of a panel; Grafana interpolates ${…} in its URL.
func dataLink(title, u string) *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder(title).Type(dashboard.DashboardLinkTypeLink).Url(u).TargetBlank(true)
}

// reasonLinks are the data links of a panel whose series carry a reason label: the traces
// and the log lines of the decisions taken for that reason, over the panel's time range.
func reasonLinks() []cog.Builder[dashboard.DashboardLink] {
	vars := map[string]string{
		"__REASON__": "${__field.labels.reason}", "__FROM__": "${__from}", "__TO__": "${__to}",
	}
	return []cog.Builder[dashboard.DashboardLink]{
		dataLink("Traces of decisions with reason ${__field.labels.reason} (Tempo)",
			tempoSearch(`{ event.loudly.reason = "__REASON__" }`, "__FROM__", "__TO__", vars)),
		dataLink("Log lines of decisions with reason ${__field.labels.reason} (Loki)",
			lokiSearch(`{service=~".+"} | json | msg="decision" | reason="__REASON__"`, "__FROM__", "__TO__", vars)),
	}
}

// prop is a field override property.
func prop(id string, value any) dashboard.DynamicConfigValue {
	return dashboard.DynamicConfigValue{Id: id, Value: value}
}

func fixedColor(c string) dashboard.DynamicConfigValue {
	return prop("color", map[string]string{"mode": "fixed", "fixedColor": c})
}

// thresholds builds absolute threshold steps: a base color, then value/color pairs.
func thresholds(base string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	out := []dashboard.Threshold{{Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		v := steps[i].(float64)
		out = append(out, dashboard.Threshold{Value: &v, Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(out)
}

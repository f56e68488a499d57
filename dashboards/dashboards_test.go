package dashboards

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"loudly/internal/generated"
	"loudly/services"
)

// The committed JSON is what Grafana provisions; it must be exactly what the code builds.
func TestGeneratedFilesAreInSync(t *testing.T) { generated.CheckInSync(t, "dashboards", Files) }

// decoded is the committed dashboard JSON, read back generically: what Grafana will see.
func decoded(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, name := range []string{"business-throughput.json", "consumer-internals.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = d
	}
	return out
}

func panels(d map[string]any) []map[string]any {
	var out []map[string]any
	for _, p := range d["panels"].([]any) {
		out = append(out, p.(map[string]any))
	}
	return out
}

// walk calls fn for every JSON object in v, depth first.
func walk(v any, fn func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		fn(v)
		for _, c := range v {
			walk(c, fn)
		}
	case []any:
		for _, c := range v {
			walk(c, fn)
		}
	}
}

func TestDashboards_UseOnlyTheProvisionedDatasources(t *testing.T) {
	allowed := map[string]string{PrometheusUID: "prometheus", TempoUID: "tempo", LokiUID: "loki"}
	for name, d := range decoded(t) {
		walk(d, func(o map[string]any) {
			ds, ok := o["datasource"].(map[string]any)
			if !ok {
				return
			}
			uid, _ := ds["uid"].(string)
			if typ, ok := allowed[uid]; !ok || ds["type"] != typ {
				t.Errorf("%s: datasource %v: want one of uid prometheus, tempo, loki with its type", name, ds)
			}
		})
		// Explore links name their datasource inside an encoded URL.
		for _, l := range links(d) {
			for _, uid := range []string{"prometheus", "tempo", "loki"} {
				l = strings.ReplaceAll(l, "%22uid%22%3A%22"+uid+"%22", "")
			}
			if strings.Contains(l, "%22uid%22") {
				t.Errorf("%s: link %s names another datasource", name, l)
			}
		}
	}
}

func links(d map[string]any) []string {
	var out []string
	walk(d, func(o map[string]any) {
		if u, ok := o["url"].(string); ok {
			out = append(out, u)
		}
	})
	return out
}

func TestDashboards_HaveUniqueIDsAndEveryQueryIsComplete(t *testing.T) {
	for name, d := range decoded(t) {
		ids := map[float64]bool{}
		for _, p := range panels(d) {
			id := p["id"].(float64)
			if ids[id] {
				t.Errorf("%s: panel id %v used twice", name, id)
			}
			ids[id] = true
			if p["type"] == "row" {
				continue
			}
			if p["title"] == "" || p["description"] == nil {
				t.Errorf("%s: panel %v has no title or description", name, id)
			}
			ts, _ := p["targets"].([]any)
			if len(ts) == 0 {
				t.Errorf("%s: panel %q has no query", name, p["title"])
			}
			for _, target := range ts {
				q := target.(map[string]any)
				if q["refId"] == nil || q["expr"] == "" || q["datasource"] == nil {
					t.Errorf("%s: panel %q: query %v lacks refId, expr or datasource", name, p["title"], q)
				}
			}
		}
	}
}

// The business dashboard shows exemplars where a click should open a trace, links to the
// consumer dashboard and to Tempo, and lists every non-happy decision from Loki.
func TestBusinessDashboard_LinksMetricsToTracesAndLogs(t *testing.T) {
	d := decoded(t)["business-throughput.json"]
	if d["uid"] != BusinessUID {
		t.Fatalf("uid %v", d["uid"])
	}
	exemplars := map[string]bool{}
	var logQL string
	for _, p := range panels(d) {
		for _, target := range asSlice(p["targets"]) {
			q := target.(map[string]any)
			if q["exemplar"] == true {
				exemplars[p["title"].(string)] = true
			}
			if p["type"] == "logs" {
				logQL, _ = q["expr"].(string)
			}
		}
	}
	for _, title := range []string{PanelDecisions, PanelInvalid, PanelSettlementLatency, "Settlement latency distribution"} {
		if !exemplars[title] {
			t.Errorf("panel %q does not ask for exemplars", title)
		}
	}
	if logQL != NonHappyDecisions {
		t.Errorf("logs panel query %q, want %q", logQL, NonHappyDecisions)
	}
	var toConsumers, toTempo, dataLinks bool
	for _, u := range links(d) {
		toConsumers = toConsumers || u == "/d/"+ConsumersUID
		toTempo = toTempo || strings.Contains(u, "%22datasource%22%3A%22tempo%22")
		dataLinks = dataLinks || strings.Contains(u, "${__field.labels.reason}")
	}
	if !toConsumers || !toTempo || !dataLinks {
		t.Errorf("links: to consumer dashboard %v, to Tempo %v, data links by reason %v; want all", toConsumers, toTempo, dataLinks)
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func TestPanelID_FindsThePanelsAlertsPointAt(t *testing.T) {
	for _, c := range []struct{ uid, title string }{
		{BusinessUID, PanelAcceptedVsSettled}, {BusinessUID, PanelUnsettled}, {BusinessUID, PanelBurnRate},
		{ConsumersUID, PanelPending}, {ConsumersUID, PanelOutboxAge},
	} {
		if id, err := PanelID(c.uid, c.title); err != nil || id == 0 {
			t.Errorf("PanelID(%s, %q) = %d, %v", c.uid, c.title, id, err)
		}
	}
	if _, err := PanelID(BusinessUID, "no such panel"); err == nil {
		t.Error("PanelID of a missing panel: no error")
	}
}

// Every service of services.All has its row on the consumer dashboard, and its job is in
// the selector of the PostgreSQL, HTTP and runtime panels.
func TestConsumersDashboard_HasARowPerService(t *testing.T) {
	d := decoded(t)["consumer-internals.json"]
	rows := map[string]bool{}
	for _, p := range panels(d) {
		if p["type"] == "row" {
			rows[p["title"].(string)] = true
		}
	}
	b, _ := json.Marshal(d)
	for _, s := range services.All {
		if !rows["Service: "+s.Name+" ("+s.About+")"] {
			t.Errorf("no row for service %s", s.Name)
		}
		if id, err := PanelID(ConsumersUID, ServiceUpPanel(s.Name)); err != nil || id == 0 {
			t.Errorf("%s: %v", ServiceUpPanel(s.Name), err)
		}
		if !strings.Contains(string(b), `up{job=\"`+s.Name+`\"}`) {
			t.Errorf("the dashboard never queries up{job=%q}", s.Name)
		}
	}
	if sel, _ := json.Marshal(servicesJobs()); !strings.Contains(string(b), strings.Trim(string(sel), `"`)) {
		t.Errorf("the runtime panels do not select %s", servicesJobs())
	}
}

package alerts

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"
)

// Grafana's notifier expands an annotation (pkg/services/ngalert/state/template, Expand,
// at the pinned Grafana 12.3) by putting
//
//	{{- $labels := .Labels -}}{{- $values := .Values -}}{{- $value := .Value -}}
//
// in front of it and executing it with text/template, option missingkey=invalid, against
// Data{Labels, Values, Value}: Values maps each expression's refId to the labels and the
// number it reduced to, Value is the evaluation as a string. The functions are Prometheus's
// template functions; grafanaFuncs has the ones the rules use, written here.

type grafanaValue struct {
	Labels map[string]string
	Value  float64
}

type grafanaData struct {
	Labels map[string]string
	Values map[string]grafanaValue
	Value  string
}

const grafanaPrelude = "{{- $labels := .Labels -}}{{- $values := .Values -}}{{- $value := .Value -}}"

var grafanaFuncs = template.FuncMap{
	"humanize": func(v float64) string {
		if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprintf("%.4g", v)
		}
		big, small := []string{"", "k", "M", "G", "T", "P", "E", "Z", "Y"}, []string{"", "m", "u", "n", "p", "f", "a", "z", "y"}
		i := 0
		if math.Abs(v) >= 1 {
			for ; math.Abs(v) >= 1000 && i < len(big)-1; i++ {
				v /= 1000
			}
			return fmt.Sprintf("%.4g%s", v, big[i])
		}
		for ; math.Abs(v) < 1 && i < len(small)-1; i++ {
			v *= 1000
		}
		return fmt.Sprintf("%.4g%s", v, small[i])
	},
	"humanizePercentage": func(v float64) string { return fmt.Sprintf("%.4g%%", v*100) },
	"humanizeDuration": func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprintf("%.4g", v)
		}
		return time.Duration(v * float64(time.Second)).Round(time.Millisecond).String()
	},
}

// grafanaExpand executes an annotation the way Grafana's notifier does.
func grafanaExpand(text string, data grafanaData) (string, error) {
	tmpl, err := template.New("__alert_annotation").Option("missingkey=invalid").Funcs(grafanaFuncs).Parse(grafanaPrelude + text)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	if err := tmpl.Execute(&out, data); err != nil {
		return "", err
	}
	return out.String(), nil
}

// Every annotation of every provisioned Grafana rule parses and renders to plain text: the
// sample value of the condition's reduced series B is shown, every label the text names is
// filled in, and no "$" or "{{" is left for an on-call engineer to puzzle over.
func TestGrafanaAnnotations_RenderInGrafanasNotifier(t *testing.T) {
	var graf struct {
		Groups []struct {
			Rules []struct {
				Title       string
				Annotations map[string]string
			}
		}
	}
	readYAML(t, "grafana-alerts.yaml", &graf)
	labelRef := regexp.MustCompile(`\$labels\.(\w+)`)
	// 0.25 as each function shows it.
	shown := map[string]string{"humanize": "250m", "humanizePercentage": "25%", "humanizeDuration": "250ms"}
	fn := regexp.MustCompile(`\$values\.B\.Value \| (\w+)`)
	rules := 0
	for _, g := range graf.Groups {
		for _, r := range g.Rules {
			rules++
			for key, text := range r.Annotations {
				// Provisioning keeps annotations raw at the pinned Grafana; newer releases
				// may expand ${NAME} in them (grafana/grafana#127214), so neither appears.
				if strings.Contains(text, "$$") || strings.Contains(text, "${") {
					t.Errorf("%s: annotation %s %q: provisioning passes it as written, so Grafana's template engine sees this", r.Title, key, text)
				}
				labels := map[string]string{}
				for _, m := range labelRef.FindAllStringSubmatch(text, -1) {
					labels[m[1]] = "sample-" + m[1]
				}
				out, err := grafanaExpand(text, grafanaData{
					Labels: labels,
					Values: map[string]grafanaValue{"A": {Labels: labels, Value: 0.25}, "B": {Labels: labels, Value: 0.25}, "C": {Labels: labels, Value: 1}},
					Value:  "[ var='B' labels={} value=0.25 ], [ var='C' labels={} value=1 ]",
				})
				if err != nil {
					t.Errorf("%s: annotation %s does not render in Grafana: %v", r.Title, key, err)
					continue
				}
				if strings.ContainsAny(out, "${}") || strings.Contains(out, "<no value>") {
					t.Errorf("%s: annotation %s renders as %q", r.Title, key, out)
				}
				for _, m := range fn.FindAllStringSubmatch(text, -1) {
					if !strings.Contains(out, shown[m[1]]) {
						t.Errorf("%s: annotation %s renders as %q, without the value (%s of 0.25 is %s)", r.Title, key, out, m[1], shown[m[1]])
					}
				}
				for name, v := range labels {
					if !strings.Contains(out, v) {
						t.Errorf("%s: annotation %s renders as %q, without label %s", r.Title, key, out, name)
					}
				}
			}
		}
	}
	if rules != len(Rules(Production)) {
		t.Errorf("grafana-alerts.yaml has %d rules, the definitions %d", rules, len(Rules(Production)))
	}
}

// The renderer above must reject what broke the committed rules (a "$$" left by escaping),
// or its passing would prove nothing.
func TestGrafanaExpand_RejectsEscapedDollars(t *testing.T) {
	data := grafanaData{Labels: map[string]string{"job": "order"}, Values: map[string]grafanaValue{"B": {Value: 0.5}}}
	if _, err := grafanaExpand("{{ $$labels.job }}", data); err == nil || !strings.Contains(err.Error(), "bad character U+0024 '$'") {
		t.Errorf("a $$ in an annotation: error %v, want text/template's bad character", err)
	}
	out, err := grafanaExpand("{{ $labels.job }}: {{ $values.B.Value | humanizePercentage }}", data)
	if err != nil || out != "order: 50%" {
		t.Errorf("= %q, %v; want \"order: 50%%\"", out, err)
	}
	if got := GrafanaTemplate("{{ $labels.job }}: {{ $value | humanize }}"); got != "{{ $labels.job }}: {{ $values.B.Value | humanize }}" {
		t.Errorf("GrafanaTemplate = %q", got)
	}
}

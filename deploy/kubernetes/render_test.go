package kubernetes

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The release the tests render: `helm template loudly deploy/kubernetes -n loudly`.
const (
	releaseName = "loudly"
	namespace   = "loudly"
)

// The values files a test renders with: none (the chart's defaults) and the training
// namespace's overlay.
var valueSets = map[string][]string{
	"default":  nil,
	"training": {"values-training.yaml"},
}

// object is one rendered Kubernetes object: where it came from, what it is, and its
// strictly decoded Go value (a k8s.io/api type, a prometheus-operator type, or, for the
// CRDs no served Go module has, the generic map checked against the CRD's schema facts).
type object struct {
	Source     string // the template, as Helm's "# Source:" line names it
	APIVersion string
	Kind       string
	Name       string
	Hook       bool
	JSON       []byte
	Typed      any
}

func (o object) String() string { return fmt.Sprintf("%s %s (%s)", o.Kind, o.Name, o.Source) }

// rendered is one `helm template` of the chart.
type rendered struct {
	Chart   *chart.Chart
	Values  map[string]any // the values the templates saw (defaults, files, overrides)
	Objects []object
}

// render renders the chart in this directory through Helm's SDK the way `helm template`
// does (a client-only dry-run install) with the values files and overrides given, and
// decodes every object strictly. Any problem fails the test.
func render(t *testing.T, dir string, files []string, overrides map[string]any) *rendered {
	t.Helper()
	chrt, err := loader.Load(dir)
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	vals := map[string]any{}
	for _, f := range files {
		v, err := common.ReadValuesFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("values file %s: %v", f, err)
		}
		vals = util.MergeTables(v, vals)
	}
	vals = util.MergeTables(overrides, vals)
	rel, err := install(chrt, vals)
	if err != nil {
		t.Fatalf("helm template with %v %v: %v", files, overrides, err)
	}
	// The values the templates saw: the chart's defaults under the user's.
	seen, err := util.CoalesceValues(chrt, vals)
	if err != nil {
		t.Fatal(err)
	}
	out := &rendered{Chart: chrt, Values: jsonRoundTrip(t, seen)}
	for _, m := range sortedManifests(rel.Manifest) {
		out.Objects = append(out.Objects, decode(t, m, false))
	}
	for _, h := range rel.Hooks {
		out.Objects = append(out.Objects, decode(t, "# Source: "+h.Path+"\n"+h.Manifest, true))
	}
	if len(out.Objects) == 0 {
		t.Fatal("the chart rendered nothing")
	}
	return out
}

// install is `helm template`: a client-only dry-run install, as the Helm CLI's template
// command sets it up.
func install(chrt *chart.Chart, vals map[string]any) (*release.Release, error) {
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = releaseName
	inst.Namespace = namespace
	inst.Replace = true
	inst.KubeVersion = &common.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}
	rel, err := inst.Run(chrt, vals)
	if err != nil {
		return nil, err
	}
	return rel.(*release.Release), nil
}

func mustLoad(t *testing.T) *chart.Chart {
	t.Helper()
	chrt, err := loader.Load(".")
	if err != nil {
		t.Fatal(err)
	}
	return chrt
}

// renderErr renders the chart with values and returns the error, if any.
func renderErr(chrt *chart.Chart, vals map[string]any) error {
	_, err := install(chrt, vals)
	return err
}

// jsonRoundTrip turns values into plain JSON types (maps, []any, float64, string, bool), as
// the tests read them.
func jsonRoundTrip(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sortedManifests(manifest string) []string {
	split := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(split))
	for k := range split {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		if strings.TrimSpace(stripComments(split[k])) != "" {
			out = append(out, split[k])
		}
	}
	return out
}

var commentLine = regexp.MustCompile(`(?m)^\s*#.*$`)

func stripComments(s string) string { return commentLine.ReplaceAllString(s, "") }

var sourceLine = regexp.MustCompile(`(?m)^# Source: (\S+)`)

// decode converts one manifest to JSON (rejecting duplicate keys) and decodes it strictly
// into the Go type of its kind: an unknown or misspelt field anywhere fails the test.
func decode(t *testing.T, manifest string, hook bool) object {
	t.Helper()
	o := object{Hook: hook}
	if m := sourceLine.FindStringSubmatch(manifest); m != nil {
		o.Source = m[1]
	}
	js, err := yaml.YAMLToJSONStrict([]byte(manifest))
	if err != nil {
		t.Fatalf("%s: not valid YAML (or a key given twice): %v\n%s", o.Source, err, manifest)
	}
	o.JSON = js
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		t.Fatalf("%s: %v", o.Source, err)
	}
	o.APIVersion, o.Kind, o.Name = head.APIVersion, head.Kind, head.Metadata.Name
	newTyped, ok := goTypes[head.APIVersion+"/"+head.Kind]
	if !ok {
		schema, ok := crdFacts[head.APIVersion+"/"+head.Kind]
		if !ok {
			t.Fatalf("%s: %s %s has no Go type or schema in this test: add one", o.Source, head.APIVersion, head.Kind)
		}
		o.Typed = checkAgainstFacts(t, o, schema)
		return o
	}
	o.Typed = newTyped()
	strict, err := sigsjson.UnmarshalStrict(js, o.Typed)
	if err != nil {
		t.Fatalf("%s: decode into %T: %v", o, o.Typed, err)
	}
	if len(strict) > 0 {
		t.Errorf("%s: fields %T does not have: %v", o, o.Typed, strict)
	}
	return o
}

// goTypes are the Go types of every kind the chart renders whose API module the Go proxy
// serves: Kubernetes' own (k8s.io/api) and the Prometheus operator's
// (prometheus-operator/pkg/apis/monitoring).
var goTypes = map[string]func() any{
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                     func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoringv1.PrometheusRule{} },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return &monitoringv1.PodMonitor{} },
}

// Objects of one kind.
func (r *rendered) all(kind string) []object {
	var out []object
	for _, o := range r.Objects {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r *rendered) one(t *testing.T, kind, name string) object {
	t.Helper()
	for _, o := range r.Objects {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return object{}
}

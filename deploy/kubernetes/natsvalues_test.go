package kubernetes

import (
	"encoding/json"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The NATS chart is a dependency nothing here can download (Chart.yaml pins it; `helm
// dependency build` fetches it where the network allows). When it is absent the chart
// renders without it, and these tests check what the Loudly chart passes it:
//
//   - every key under nats: is one of natsChartKeys, the keys of the pinned chart's
//     values.yaml that this chart sets (read from nats-io/k8s at tag nats-2.14.2,
//     helm/charts/nats/values.yaml; a new key must be looked up there first);
//   - the free-form parts are what the NATS chart turns them into: its container and pod
//     template patches applied (RFC 6902, as the chart's jsonpatch template does) to a
//     container and pod like the chart's decode strictly as Kubernetes types; resources,
//     env and topology spread constraints likewise; config.merge with auth.conf loads in
//     nats-server (TestChart_NATSConfigLoads).
//
// When charts/ holds the NATS chart (after `helm dependency build`), the loader renders it
// too and its StatefulSet, Services and ConfigMap are decoded strictly with the rest.
var natsChartKeys = []string{
	"config.cluster.enabled",
	"config.cluster.replicas",
	"config.jetstream.enabled",
	"config.jetstream.fileStore.enabled",
	"config.jetstream.fileStore.pvc.size",
	"config.jetstream.merge",
	"config.monitor.enabled",
	"config.merge",
	"container.image.tag",
	"container.resources",
	"container.env",
	"container.patch",
	"podTemplate.patch",
	"podTemplate.topologySpreadConstraints",
	"promExporter.enabled",
	"promExporter.podMonitor.enabled",
	"natsBox.enabled",
}

// freeForm are the keys whose value the NATS chart takes whole (merge, patch, resources,
// env, a map of constraints): the walk stops there.
func freeForm(path string) bool {
	for _, suffix := range []string{".merge", ".patch", ".resources", ".env", ".topologySpreadConstraints"} {
		if strings.HasSuffix("."+path, suffix) {
			return true
		}
	}
	return false
}

func leafPaths(v any, prefix string, out *[]string) {
	m, ok := v.(map[string]any)
	if !ok || prefix != "" && freeForm(prefix) {
		*out = append(*out, prefix)
		return
	}
	for k, sub := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		leafPaths(sub, p, out)
	}
}

// Every key values.yaml (and the training values) set under nats: is one the pinned NATS
// chart has; `enabled` is the dependency's condition (Chart.yaml), which Helm reads.
func TestChart_NATSValuesAreTheChartsKeys(t *testing.T) {
	for name, files := range valueSets {
		t.Run(name, func(t *testing.T) {
			for _, f := range append([]string{"values.yaml"}, files...) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				var v struct {
					NATS map[string]any `json:"nats"`
				}
				if err := yaml.Unmarshal(b, &v); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				var paths []string
				leafPaths(v.NATS, "", &paths)
				sort.Strings(paths)
				for _, p := range paths {
					if p != "enabled" && !slices.Contains(natsChartKeys, p) {
						t.Errorf("%s: nats.%s is not a key of the NATS chart 2.14.2 this test knows: check it in its values.yaml and add it to natsChartKeys", f, p)
					}
				}
			}
		})
	}
	deps := mustLoad(t).Metadata.Dependencies
	if len(deps) != 1 || deps[0].Name != "nats" || deps[0].Version != "2.14.2" || deps[0].Condition != "nats.enabled" {
		t.Errorf("Chart.yaml dependencies %+v: the keys above are checked against nats 2.14.2", deps)
	}
}

// natsContainer and natsPod are the NATS chart's nats container and pod template as its
// files/stateful-set/*.yaml render them for these values, reduced to what the values'
// patches touch: the paths a patch adds to must exist, as they do there.
const (
	natsContainer = `{"name": "nats", "image": "nats:2.14.7-alpine", "args": ["--config", "/etc/nats-config/nats.conf"],
		"env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
		"volumeMounts": [{"name": "config", "mountPath": "/etc/nats-config"}, {"name": "pid", "mountPath": "/var/run/nats"}]}`
	natsPod = `{"metadata": {"labels": {"app.kubernetes.io/name": "nats"}},
		"spec": {"containers": [{"name": "nats", "image": "nats:2.14.7-alpine"}],
		"volumes": [{"name": "config", "configMap": {"name": "loudly-nats-config"}}, {"name": "pid", "emptyDir": {}}]}}`
)

// The free-form values the NATS chart applies give valid Kubernetes objects: the patches
// apply and the results decode strictly; so do the resources, env and constraints.
func TestChart_NATSValuesMakeValidObjects(t *testing.T) {
	r := render(t, ".", nil, nil)
	nats := r.Values["nats"]
	patched := func(doc, key string, into any) {
		t.Helper()
		ops, err := json.Marshal(resolveAll(t, pathAny(nats, key, "patch")))
		if err != nil {
			t.Fatal(err)
		}
		patch, err := jsonpatch.DecodePatch(ops)
		if err != nil {
			t.Fatalf("nats.%s.patch: %v", key, err)
		}
		out, err := patch.Apply([]byte(doc))
		if err != nil {
			t.Fatalf("nats.%s.patch does not apply to the chart's %s: %v", key, key, err)
		}
		if strict, err := sigsjson.UnmarshalStrict(out, into); err != nil || len(strict) > 0 {
			t.Errorf("nats.%s.patch makes an invalid %T: %v %v\n%s", key, into, err, strict, out)
		}
	}
	var c corev1.Container
	patched(natsContainer, "container", &c)
	var p corev1.PodTemplateSpec
	patched(natsPod, "podTemplate", &p)
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range p.Spec.Volumes {
			mounted = mounted || m.Name == v.Name && v.ConfigMap != nil && v.ConfigMap.Name == releaseName+"-nats-auth"
		}
	}
	if !mounted {
		t.Errorf("the NATS container mounts no volume of the %s-nats-auth ConfigMap: mounts %+v, volumes %+v", releaseName, c.VolumeMounts, p.Spec.Volumes)
	}
	strictAs(t, "nats.container.resources", pathAny(nats, "container", "resources"), &corev1.ResourceRequirements{})
	for k, v := range pathAny(nats, "container", "env").(map[string]any) {
		if _, ok := v.(string); !ok {
			strictAs(t, "nats.container.env."+k, map[string]any{"name": k, "valueFrom": pathAny(v, "valueFrom")}, &corev1.EnvVar{})
		}
	}
	for key, v := range pathAny(nats, "podTemplate", "topologySpreadConstraints").(map[string]any) {
		c := v.(map[string]any)
		c["topologyKey"] = key
		c["labelSelector"] = map[string]any{"matchLabels": natsPodLabels()}
		strictAs(t, "nats.podTemplate.topologySpreadConstraints."+key, c, &corev1.TopologySpreadConstraint{})
	}
	if n := intValue(pathAny(nats, "config", "cluster", "replicas")); n != 3 || intValue(r.Values["streamReplicas"]) > n {
		t.Errorf("NATS cluster of %d nodes for streams of %v replicas: want three nodes, R3 at most", n, r.Values["streamReplicas"])
	}
	// With the NATS chart in charts/, its own rendering is checked too.
	for _, o := range r.all("StatefulSet") {
		ss := o.Typed.(*appsv1.StatefulSet)
		t.Logf("the NATS chart is in charts/: %s rendered with %d replicas", ss.Name, *ss.Spec.Replicas)
	}
}

// resolveAll replaces every {$tplYaml: ...} in v with what the NATS chart makes of it.
func resolveAll(t *testing.T, v any) any {
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["$tplYaml"]; ok && len(x) == 1 {
			return resolveTpl(t, x)
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = resolveAll(t, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolveAll(t, e)
		}
		return out
	}
	return v
}

func strictAs(t *testing.T, what string, v, into any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if strict, err := sigsjson.UnmarshalStrict(b, into); err != nil || len(strict) > 0 {
		t.Errorf("%s is not a valid %T: %v %v", what, into, err, strict)
	}
}

package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
)

// Three kinds the chart renders belong to operators whose Go API modules the Go proxy does
// not serve (CloudNativePG, the OpenTelemetry operator) or cannot be added without moving
// the services' own dependencies (KEDA v2.20.2 raises github.com/prometheus/prometheus and
// github.com/golang/snappy for the whole module). For those the test checks each object
// against testdata/crd-facts/<group>_<version>_<Kind>.json: a JSON Schema of the fields
// this chart sets, each one's type, enum, bounds and requiredness as the operator's
// published CRD (the release named in the file's $comment) declares it, and no other field
// (additionalProperties: false on every object). Those facts were extracted from the
// upstream CRD's openAPIV3Schema at that release, for the paths the rendered objects use
// and nothing else (no descriptions, no other fields); the CRD itself is not in the
// repository. A field the chart starts to use must be looked up there and added
// (docs/kubernetes.md, "Changing the chart"). The CRDs' CEL rules are not checked.
//
// A node with "x-go-type" is a Kubernetes core type the CRD embeds (the CRDs reuse
// k8s.io/api's types): that part of the object is decoded strictly into the Go type, as
// every other Kubernetes object is.
var crdFacts = map[string]string{
	"keda.sh/v1alpha1/ScaledObject":                   "keda.sh_v1alpha1_ScaledObject.json",
	"postgresql.cnpg.io/v1/Cluster":                   "postgresql.cnpg.io_v1_Cluster.json",
	"postgresql.cnpg.io/v1/Database":                  "postgresql.cnpg.io_v1_Database.json",
	"opentelemetry.io/v1beta1/OpenTelemetryCollector": "opentelemetry.io_v1beta1_OpenTelemetryCollector.json",
}

// coreTypes are the Kubernetes types a fact file may name in x-go-type.
var coreTypes = map[string]func() any{
	"ResourceRequirements": func() any { return &corev1.ResourceRequirements{} },
	"SecurityContext":      func() any { return &corev1.SecurityContext{} },
	"PodSecurityContext":   func() any { return &corev1.PodSecurityContext{} },
	"EnvVarList":           func() any { return &[]corev1.EnvVar{} },
	"ObjectMeta":           func() any { return &metav1.ObjectMeta{} },
}

// checkAgainstFacts validates o against its kind's fact schema and returns it decoded as a
// generic map.
func checkAgainstFacts(t *testing.T, o object, file string) map[string]any {
	t.Helper()
	path := filepath.Join("testdata", "crd-facts", file)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(file, doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	sch, err := c.Compile(file)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(o.JSON))
	if err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s does not fit %s (the CRD's fields, as this chart uses them):\n%v", o, path, err)
	}
	var schemaTree, objTree map[string]any
	_ = json.Unmarshal(raw, &schemaTree)
	if err := json.Unmarshal(o.JSON, &objTree); err != nil {
		t.Fatal(err)
	}
	checkGoTypes(t, o, schemaTree, objTree, "")
	return objTree
}

// checkGoTypes decodes every part of obj that the schema marks with x-go-type strictly into
// that Kubernetes type.
func checkGoTypes(t *testing.T, o object, schema map[string]any, obj any, at string) {
	t.Helper()
	if name, ok := schema["x-go-type"].(string); ok {
		newT, ok := coreTypes[name]
		if !ok {
			t.Fatalf("x-go-type %q at %s: not a type this test knows", name, at)
		}
		js, _ := json.Marshal(obj)
		v := newT()
		strict, err := sigsjson.UnmarshalStrict(js, v)
		if err != nil || len(strict) > 0 {
			t.Errorf("%s: %s is not a %s: %v %v", o, at, name, err, strict)
		}
		return
	}
	switch v := obj.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if sub, ok := props[k].(map[string]any); ok {
				checkGoTypes(t, o, sub, v[k], at+"."+k)
			} else if sub, ok := schema["additionalProperties"].(map[string]any); ok {
				checkGoTypes(t, o, sub, v[k], at+"."+k)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range v {
				checkGoTypes(t, o, items, e, fmt.Sprintf("%s[%d]", at, i))
			}
		}
	}
}

// Every fact file names the upstream release it was read from, and is used by a kind.
func TestCRDFacts_NameTheirSource(t *testing.T) {
	for kind, file := range crdFacts {
		raw, err := os.ReadFile(filepath.Join("testdata", "crd-facts", file))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		var head struct {
			Comment string `json:"$comment"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if !strings.Contains(head.Comment, "github.com/") || !strings.Contains(head.Comment, "config/crd") && !strings.Contains(head.Comment, "bundle") {
			t.Errorf("%s: $comment %q does not name the upstream CRD the facts come from", file, head.Comment)
		}
	}
}

package kubernetes

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"loudly/internal/testenv"
)

// collectorConfig is the rendered OpenTelemetryCollector's configuration.
func collectorConfig(t *testing.T) map[string]any {
	t.Helper()
	r := render(t, ".", nil, nil)
	cfg, ok := pathAny(r.one(t, "OpenTelemetryCollector", releaseName).Typed, "spec", "config").(map[string]any)
	if !ok {
		t.Fatal("the OpenTelemetryCollector has no config")
	}
	return cfg
}

// The collector has the compose demo's pipelines (deploy/compose/otel-collector/config.yaml):
// the same receivers, processors, exporters, extensions and telemetry, only the exporters
// pointed at the cluster's Tempo and Loki.
func TestChart_CollectorIsTheComposeCollector(t *testing.T) {
	got := collectorConfig(t)
	b, err := os.ReadFile("../compose/otel-collector/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{}
	if err := yaml.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for _, exp := range []string{"otlp_grpc/tempo", "otlp_http/loki"} {
		for _, cfg := range []map[string]any{got, want} {
			e, ok := pathAny(cfg, "exporters", exp).(map[string]any)
			if !ok {
				t.Fatalf("no exporter %s", exp)
			}
			e["endpoint"] = "(where the deployment's " + exp + " is)"
		}
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("the chart's collector differs from compose's beyond its exporters' endpoints:\nchart:   %s\ncompose: %s", gj, wj)
	}
}

// The OpenTelemetry Collector the tests build with compose's components (make tools), at
// compose's release, which the chart runs, accepts the configuration.
func TestChart_CollectorConfigValidates(t *testing.T) {
	bin := testenv.CollectorPath(t)
	b, err := yaml.Marshal(collectorConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput(); err != nil {
		t.Errorf("otelcol validate: %v\n%s\n%s", err, out, b)
	}
}

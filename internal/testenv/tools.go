package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The third-party programs the tests run are built by `make tools` (internal/tools/build.sh)
// from the Go module proxy, at the versions deploy/compose/.env pins for the demo, into a
// cache outside the repository: LOUDLY_TOOLS_DIR, or loudly-tools in the user cache
// directory. A test that needs one and does not find it fails with that hint; it never
// falls back to another version silently.

// ToolsDir is where `make tools` puts the programs it builds.
func ToolsDir() string {
	if d := os.Getenv("LOUDLY_TOOLS_DIR"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir(), "loudly-cache")
	}
	return filepath.Join(cache, "loudly-tools")
}

// PromtoolPath is the promtool of the Prometheus release the compose demo runs.
func PromtoolPath(t testing.TB) string {
	t.Helper()
	return prometheusTool(t, "promtool")
}

// PrometheusPath is the Prometheus server of the release the compose demo runs.
func PrometheusPath(t testing.TB) string {
	t.Helper()
	return prometheusTool(t, "prometheus")
}

// CollectorPath is the OpenTelemetry Collector built with exactly the components of the
// compose demo's collector, at the demo's release.
func CollectorPath(t testing.TB) string {
	t.Helper()
	v := composePin(t, "OTELCOL_VERSION")
	return tool(t, filepath.Join(ToolsDir(), "otelcol-"+v, "otelcol-loudly"), "the OpenTelemetry Collector "+v)
}

func prometheusTool(t testing.TB, name string) string {
	t.Helper()
	v := composePin(t, "PROMETHEUS_VERSION")
	mod, err := PrometheusModuleVersion(v)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return tool(t, filepath.Join(ToolsDir(), "prometheus-"+mod, name), name+" "+v)
}

func tool(t testing.TB, path, what string) string {
	t.Helper()
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("testenv: %s is not built (%s): run `make tools`, which builds it from the Go module proxy", what, path)
	}
	return path
}

var promRelease = regexp.MustCompile(`^v3\.(\d+)\.(\d+)$`)

// PrometheusModuleVersion is the Go module version of a Prometheus 3 release: v3.13.2 is
// github.com/prometheus/prometheus v0.313.2.
func PrometheusModuleVersion(release string) (string, error) {
	m := promRelease.FindStringSubmatch(release)
	if m == nil {
		return "", fmt.Errorf("Prometheus release %q is not v3.X.Y", release)
	}
	minor, _ := strconv.Atoi(m[1])
	return fmt.Sprintf("v0.%d.%s", 300+minor, m[2]), nil
}

// composePin reads a version pinned in deploy/compose/.env.
func composePin(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(RepoRoot(t), "deploy", "compose", ".env")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("testenv: %s sets no %s", path, name)
	return ""
}

// RepoRoot is the directory of the repository's go.mod, found upwards from the test's
// working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

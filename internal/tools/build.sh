#!/usr/bin/env bash
# Builds the third-party programs the tests run, at the versions the compose demo pins,
# from the Go module proxy, into a cache outside the repository (`make tools` runs this;
# a binary already there is not built again):
#
#   $TOOLS_DIR/prometheus-<module version>/{prometheus,promtool}
#                          Prometheus at PROMETHEUS_VERSION of deploy/compose/.env
#                          (Prometheus v3.X.Y is Go module v0.3XX.Y). Built without the
#                          builtinassets tag (the web UI is absent, the server and its
#                          API, all the tests use, are not) and with Prometheus's own
#                          remove_all_sd tag (plugins/*.go at the tag): every optional
#                          service discovery is left out, file, http and static stay.
#                          The tests scrape static targets only.
#   $TOOLS_DIR/otelcol-<version>/otelcol-loudly
#                          the OpenTelemetry Collector with the components of
#                          deploy/compose/otel-collector/builder.yaml, made by the
#                          collector builder at OTELCOL_VERSION.
#
# TOOLS_DIR defaults to loudly-tools in the user cache directory (the one beside Go's build
# cache); internal/testenv looks in the same place. The two builds run side by side; each
# prints its time, and the total is printed last.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
TOOLS_DIR=${LOUDLY_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/loudly-tools}
env_value() { sed -n "s/^$1=//p" deploy/compose/.env; }

build_prometheus() {
  prom=$(env_value PROMETHEUS_VERSION)          # v3.13.2
  if [[ ! $prom =~ ^v3\.([0-9]+)\.([0-9]+)$ ]]; then
    echo "tools: PROMETHEUS_VERSION=$prom in deploy/compose/.env is not a v3.X.Y release" >&2; exit 1
  fi
  prom_mod=v0.$((300 + BASH_REMATCH[1])).${BASH_REMATCH[2]}   # v0.313.2
  prom_dir=$TOOLS_DIR/prometheus-$prom_mod
  if [[ ! -x $prom_dir/prometheus ]] || ! "$prom_dir/promtool" --version 2>/dev/null | grep -q "version ${prom#v} "; then
    echo "tools: building Prometheus $prom (github.com/prometheus/prometheus $prom_mod) into $prom_dir"
    start=$SECONDS
    work=$(mktemp -d)
    # `go install module@version` refuses a module whose go.mod has replace directives, and
    # Prometheus's has one: build it as the dependency of a throwaway module that repeats it.
    mod_file=$(cd "$work" && "$GO" mod download -json "github.com/prometheus/prometheus@$prom_mod" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
    {
      echo "module loudly.tools/prometheus"
      sed -n 's/^go \(.*\)/go \1/p' "$mod_file"
      grep '^replace ' "$mod_file" || true
    } > "$work/go.mod"
    rm -rf "$prom_dir.tmp" && mkdir -p "$prom_dir.tmp"
    (cd "$work" &&
      "$GO" get "github.com/prometheus/prometheus/cmd/prometheus@$prom_mod" "github.com/prometheus/prometheus/cmd/promtool@$prom_mod" &&
      "$GO" build -tags remove_all_sd -ldflags "-X github.com/prometheus/common/version.Version=${prom#v}" -o "$prom_dir.tmp/" \
        github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool) >"$work/build.log" 2>&1 ||
      { tail -30 "$work/build.log" >&2; rm -rf "$work"; echo "tools: building Prometheus failed" >&2; exit 1; }
    rm -rf "$prom_dir" && mv "$prom_dir.tmp" "$prom_dir"
    rm -rf "$work"
    echo "tools: Prometheus built in $((SECONDS - start))s"
  fi
}

build_collector() {
  otel=$(env_value OTELCOL_VERSION)             # 0.159.0
  manifest=deploy/compose/otel-collector/builder.yaml
  otel_dir=$TOOLS_DIR/otelcol-$otel
  if [[ ! -x $otel_dir/otelcol-loudly || $manifest -nt $otel_dir/otelcol-loudly ]]; then
    echo "tools: building the OpenTelemetry Collector $otel ($manifest) into $otel_dir"
    start=$SECONDS
    GOBIN=$TOOLS_DIR/bin "$GO" install "go.opentelemetry.io/collector/cmd/builder@v$otel"
    rm -rf "$otel_dir.tmp" && mkdir -p "$otel_dir.tmp"
    "$TOOLS_DIR/bin/builder" --config "$manifest" --output-path "$otel_dir.tmp/src" >"$otel_dir.tmp/build.log" 2>&1 ||
      { tail -30 "$otel_dir.tmp/build.log" >&2; echo "tools: the collector builder failed (log: $otel_dir.tmp/build.log)" >&2; exit 1; }
    mkdir -p "$otel_dir"
    mv "$otel_dir.tmp/src/otelcol-loudly" "$otel_dir/otelcol-loudly.new" && mv "$otel_dir/otelcol-loudly.new" "$otel_dir/otelcol-loudly"
    rm -rf "$otel_dir.tmp"
    echo "tools: collector built in $((SECONDS - start))s"
  fi
}

total=$SECONDS
build_prometheus & prom_pid=$!
build_collector & otel_pid=$!
failed=0
wait "$prom_pid" || failed=1
wait "$otel_pid" || failed=1
[[ $failed == 0 ]] || exit 1
echo "tools: ready in $((SECONDS - total))s ($TOOLS_DIR)"

package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"loudly/pkg/env"
)

func TestFromEnv_ReadsThroughTheProgramsReader(t *testing.T) {
	t.Run("the variables complete the configuration", func(t *testing.T) {
		vars := map[string]string{"OTEL_SERVICE_NAME": "svc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
			"LOKI_URL": "http://loki:3100/loki/api/v1/push", "LOG_LEVEL": "WARN", "DEPLOYMENT_ENVIRONMENT": "prod"}
		r := env.New(func(k string) string { return vars[k] })
		cfg := FromEnv(Config{ServiceName: "default", ServiceVersion: "v1"}, r)
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		want := Config{ServiceName: "svc", ServiceVersion: "v1", Environment: "prod", OTLP: OTLP{ProtocolHTTP, ProtocolHTTP, ProtocolHTTP},
			LogLevel: slog.LevelWarn, Loki: LokiConfig{URL: "http://loki:3100/loki/api/v1/push"}}
		if cfg.ServiceName != want.ServiceName || cfg.ServiceVersion != want.ServiceVersion || cfg.Environment != want.Environment ||
			cfg.OTLP != want.OTLP || cfg.LogLevel != want.LogLevel || cfg.Loki.URL != want.Loki.URL {
			t.Errorf("config %+v, want %+v", cfg, want)
		}
	})
	t.Run("unset variables keep the given values", func(t *testing.T) {
		r := env.New(func(string) string { return "" })
		if cfg := FromEnv(Config{ServiceName: "order"}, r); cfg.ServiceName != "order" || cfg.LogLevel != slog.LevelInfo || cfg.OTLP != (OTLP{}) || r.Err() != nil {
			t.Errorf("config %+v, error %v", cfg, r.Err())
		}
		given := OTLP{Traces: ProtocolGRPC, Logs: ProtocolHTTP}
		r = env.New(func(k string) string { return map[string]string{"OTEL_LOGS_EXPORTER": "none"}[k] })
		if got := FromEnv(Config{ServiceName: "order", OTLP: given}, r).OTLP; got != (OTLP{Traces: ProtocolGRPC}) {
			t.Errorf("OTLP %+v from %+v and OTEL_LOGS_EXPORTER=none: want the traces kept, the logs off", got, given)
		}
	})
	t.Run("a bad LOG_LEVEL is one more problem of the reader", func(t *testing.T) {
		vars := map[string]string{"LOG_LEVEL": "loud", "HTTP_ADDR": "nope"}
		r := env.New(func(k string) string { return vars[k] })
		r.Addr("HTTP_ADDR", ":8080")
		FromEnv(Config{ServiceName: "order"}, r)
		err := r.Err()
		if err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") || !strings.Contains(err.Error(), "HTTP_ADDR") {
			t.Errorf("error %v: want both LOG_LEVEL and HTTP_ADDR named", err)
		}
	})
}

// Which signals leave over OTLP, and how, for the combinations of the standard variables
// a deployment uses.
func TestFromEnv_ChoosesTheSignalsAndProtocols(t *testing.T) {
	const (
		H = ProtocolHTTP
		G = ProtocolGRPC
	)
	for _, c := range []struct {
		name string
		vars map[string]string
		want OTLP
	}{
		{"no endpoint: nothing leaves, no connection is tried", nil, OTLP{}},
		{"a protocol alone is no endpoint", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, OTLP{}},
		{"one endpoint: every signal, http/protobuf by default",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, OTLP{H, H, H}},
		{"gRPC for every signal",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, OTLP{G, G, G}},
		{"a signal's own protocol wins",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf"}, OTLP{G, G, H}},
		{"a signal's own endpoint exports that signal only",
			map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo:4318/v1/traces"}, OTLP{Traces: H}},
		{"OTEL_LOGS_EXPORTER=none keeps logs home (the compose stack pushes them to Loki)",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_LOGS_EXPORTER": "none"}, OTLP{Traces: H, Metrics: H}},
		{"OTEL_METRICS_EXPORTER=prometheus: /metrics only",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "prometheus"}, OTLP{Traces: H, Logs: H}},
		{"OTEL_TRACES_EXPORTER=otlp with no endpoint: the SDK's default endpoint for the protocol",
			map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, OTLP{Traces: G}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := env.New(func(k string) string { return c.vars[k] })
			got := FromEnv(Config{ServiceName: "svc"}, r).OTLP
			if err := r.Err(); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("OTLP %+v, want %+v", got, c.want)
			}
		})
	}
}

// A value the SDK's exporters would ignore or misread is a start-up error naming the
// variable, reported with every other problem of the configuration.
func TestFromEnv_RefusesWhatTheExportersWouldIgnore(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, variable, value, says string
	}{
		{"an unknown protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon", "want one of http/protobuf, grpc"},
		{"OTLP/JSON, which the SDK's metric and log exporters do not speak", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "want one of http/protobuf, grpc"},
		{"a signal's unknown protocol", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "udp", "want one of"},
		{"an exporter Loudly does not build", "OTEL_TRACES_EXPORTER", "console", "want one of otlp, none"},
		{"an endpoint without a scheme", "OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317", "want an http:// or https:// URL"},
		{"a compression the SDK would quietly drop", "OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", "want gzip or none"},
		{"a timeout that is not milliseconds", "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "10s", "milliseconds"},
		{"an insecure flag that is not a boolean", "OTEL_EXPORTER_OTLP_INSECURE", "yes", "want true or false"},
		{"a certificate file that is missing", "OTEL_EXPORTER_OTLP_CERTIFICATE", filepath.Join(dir, "nope.pem"), "no such file"},
		{"a certificate file with no certificate", "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", notPEM, "no PEM certificate"},
		{"a client certificate without its key", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", notPEM, "set OTEL_EXPORTER_OTLP_CLIENT_KEY too"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", c.variable: c.value, "HTTP_ADDR": "nope"}
			r := env.New(func(k string) string { return vars[k] })
			r.Addr("HTTP_ADDR", ":8080")
			FromEnv(Config{ServiceName: "svc"}, r)
			err := r.Err()
			if err == nil || !strings.Contains(err.Error(), c.variable+"=") || !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), "HTTP_ADDR") {
				t.Errorf("error %v: want %s named, saying %q, beside HTTP_ADDR", err, c.variable, c.says)
			}
		})
	}
	t.Run("headers that do not parse, without showing them", func(t *testing.T) {
		r := env.New(func(k string) string {
			return map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer s3cret,oops"}[k]
		})
		FromEnv(Config{ServiceName: "svc"}, r)
		err := r.Err()
		if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_HEADERS") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error %v: want OTEL_EXPORTER_OTLP_HEADERS named and its value not shown", err)
		}
	})
	t.Run("what the SDK reads well passes", func(t *testing.T) {
		vars := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "GRPC",
			"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20s3cret, X-Tenant = a", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
			"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_INSECURE": "FALSE", "OTEL_TRACES_EXPORTER": "otlp"}
		r := env.New(func(k string) string { return vars[k] })
		if got := FromEnv(Config{ServiceName: "svc"}, r).OTLP; r.Err() != nil || got != (OTLP{ProtocolGRPC, ProtocolGRPC, ProtocolGRPC}) {
			t.Errorf("OTLP %+v, error %v", got, r.Err())
		}
	})
}

// TELEMETRY_SPAN_ENCODER chose the private encoder that the SDK's exporters replaced: a
// service given it starts, and says once that the variable is no longer read.
func TestSetup_SaysTheSpanEncoderVariableIsGone(t *testing.T) {
	r := env.New(func(k string) string { return map[string]string{"TELEMETRY_SPAN_ENCODER": "direct"}[k] })
	var logs bytes.Buffer
	cfg := FromEnv(Config{ServiceName: "svc", LogWriter: &logs}, r)
	if err := r.Err(); err != nil {
		t.Fatalf("TELEMETRY_SPAN_ENCODER is an error: %v", err)
	}
	tel, err := Setup(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_ = tel.Shutdown(context.Background())
	if got := logs.String(); strings.Count(got, "TELEMETRY_SPAN_ENCODER=direct") != 1 || !strings.Contains(got, `"level":"WARN"`) {
		t.Errorf("log %q: want one warning naming TELEMETRY_SPAN_ENCODER=direct", got)
	}
}

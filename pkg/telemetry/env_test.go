package telemetry

import (
	"log/slog"
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
		want := Config{ServiceName: "svc", ServiceVersion: "v1", Environment: "prod", OTLPEndpoint: "http://collector:4318",
			LogLevel: slog.LevelWarn, Loki: LokiConfig{URL: "http://loki:3100/loki/api/v1/push"}}
		if cfg.ServiceName != want.ServiceName || cfg.ServiceVersion != want.ServiceVersion || cfg.Environment != want.Environment ||
			cfg.OTLPEndpoint != want.OTLPEndpoint || cfg.LogLevel != want.LogLevel || cfg.Loki.URL != want.Loki.URL {
			t.Errorf("config %+v, want %+v", cfg, want)
		}
	})
	t.Run("unset variables keep the given values", func(t *testing.T) {
		r := env.New(func(string) string { return "" })
		if cfg := FromEnv(Config{ServiceName: "order"}, r); cfg.ServiceName != "order" || cfg.LogLevel != slog.LevelInfo || r.Err() != nil {
			t.Errorf("config %+v, error %v", cfg, r.Err())
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

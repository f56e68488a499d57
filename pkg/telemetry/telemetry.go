// Package telemetry is Loudly's single OpenTelemetry bootstrap and its decision recorder.
//
// Every program calls Setup once at start-up and Shutdown (with a fresh context) on exit.
// Nothing here touches OpenTelemetry's global providers: components receive the providers
// they need through their constructors, so tests can run several services in one process,
// each with its own exporters.
package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/env"
)

// Config selects what Setup builds. The zero value plus a ServiceName is a working
// configuration: JSON logs on stdout, Prometheus metrics, traces recorded but not exported.
type Config struct {
	ServiceName    string // default service.name; OTEL_SERVICE_NAME overrides it
	ServiceVersion string
	Environment    string    // deployment.environment.name; default "local"
	LogWriter      io.Writer // default os.Stdout
	LogLevel       slog.Level
	// AsyncLogWrites writes LogWriter from a goroutine of its own: a line is copied and the
	// logger goes on, instead of every goroutine that logs queueing behind one write call
	// (a program's stdout; Shutdown writes what is queued). Off, LogWriter is written in
	// place, as tests that read it back at once need.
	AsyncLogWrites bool
	// SpanQueue is how many ended spans may wait for export (queued or being exported);
	// beyond it a span is dropped and counted (loudly.telemetry.spans.dropped). Default
	// DefaultSpanQueue; FromEnv reads OTEL_BSP_MAX_QUEUE_SIZE.
	SpanQueue int
	// SpanEncoder chooses how spans are encoded for OTLP: SpanEncoderDirect (the default)
	// writes the protobuf straight from the SDK's spans (otlpencode.go), SpanEncoderSDK
	// uses the SDK's own OTLP/HTTP exporter. FromEnv reads TELEMETRY_SPAN_ENCODER. With a
	// TLS setting (OTEL_EXPORTER_OTLP_CERTIFICATE and the like) the SDK's is used anyway.
	SpanEncoder string

	// OTLPEndpoint switches OTLP export of traces, metrics and logs on. Empty means no
	// export at all (and no connection attempts, so no error spam). FromEnv fills it from
	// OTEL_EXPORTER_OTLP_ENDPOINT; the exporters read the rest of OTEL_EXPORTER_OTLP_*.
	OTLPEndpoint string
	// NoOTLPLogs keeps logs out of the OTLP export while traces and metrics go (FromEnv:
	// OTEL_LOGS_EXPORTER=none): for a setup whose logs reach their store another way (Loki).
	NoOTLPLogs bool

	// Loki switches pushing logs to Loki on when its URL is set (FromEnv: LOKI_URL).
	Loki LokiConfig

	// Extra span processors and metric readers, used by tests to capture telemetry in memory.
	SpanProcessors []sdktrace.SpanProcessor
	MetricReaders  []sdkmetric.Reader
	// ExtraLogHandlers receive every log record besides stdout (tests, the Loki sink).
	ExtraLogHandlers []slog.Handler
}

// FromEnv completes cfg from the standard OTEL_* variables, LOKI_URL and LOG_LEVEL, read
// with r: a bad value is one more problem r reports (r.Err) with the rest of the
// program's configuration.
func FromEnv(cfg Config, r *env.Reader) Config {
	cfg.ServiceName = r.String("OTEL_SERVICE_NAME", cfg.ServiceName)
	cfg.Environment = r.String("DEPLOYMENT_ENVIRONMENT", cfg.Environment)
	cfg.OTLPEndpoint = r.String("OTEL_EXPORTER_OTLP_ENDPOINT", cfg.OTLPEndpoint)
	cfg.Loki.URL = r.String("LOKI_URL", cfg.Loki.URL)
	cfg.SpanEncoder = r.Choice("TELEMETRY_SPAN_ENCODER", cmp.Or(cfg.SpanEncoder, SpanEncoderDirect), SpanEncoderDirect, SpanEncoderSDK)
	cfg.SpanQueue = r.Int("OTEL_BSP_MAX_QUEUE_SIZE", cmp.Or(cfg.SpanQueue, DefaultSpanQueue), 1, 1<<20)
	if v := r.Choice("LOG_LEVEL", "", "debug", "info", "warn", "error"); v != "" {
		_ = cfg.LogLevel.UnmarshalText([]byte(v))
	}
	if r.Choice("OTEL_LOGS_EXPORTER", "otlp", "otlp", "none") == "none" {
		cfg.NoOTLPLogs = true
	}
	return cfg
}

// The span encoders Config.SpanEncoder chooses from.
const (
	SpanEncoderDirect = "direct"
	SpanEncoderSDK    = "sdk"
)

// DefaultSpanQueue is how many spans may wait for export unless OTEL_BSP_MAX_QUEUE_SIZE
// says otherwise: four times the SDK's 2048. With 2048 a saturated run of `make bench`
// on a 2-core machine dropped 1,286 and 1,597 spans (of about 130,000) in bursts while
// the exporter waited for a core; with 8192, none. A span waiting costs a few KiB, so
// the bound is tens of MiB at most.
const DefaultSpanQueue = 8192

// Telemetry holds one program's providers. Pass it (or the parts a component needs) to
// constructors; never store it in a package variable.
type Telemetry struct {
	Resource       *resource.Resource
	TracerProvider *sdktrace.TracerProvider
	MeterProvider  *sdkmetric.MeterProvider
	LoggerProvider *sdklog.LoggerProvider // nil when OTLP export is off
	Propagator     propagation.TextMapPropagator
	Logger         *slog.Logger
	Registry       *prometheus.Registry
	Decisions      *Recorder

	shutdowns []func(context.Context) error
}

// Setup builds the providers. It fails only on configuration errors; an unreachable
// collector is never an error (exporters retry and drop in the background).
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	if cfg.ServiceName == "" {
		return nil, errors.New("telemetry: service name is required")
	}
	if cfg.Environment == "" {
		cfg.Environment = "local"
	}
	if cfg.LogWriter == nil {
		cfg.LogWriter = os.Stdout
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(
			semconv.ServiceName(cfg.ServiceName),
			semconv.ServiceVersion(versionOr(cfg.ServiceVersion)),
			semconv.ServiceInstanceID(instanceID()),
			attribute.String("deployment.environment.name", cfg.Environment),
		),
		resource.WithFromEnv(), // OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	t := &Telemetry{
		Resource:   res,
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		Registry:   prometheus.NewRegistry(),
	}

	// Metrics: always a Prometheus reader (the /metrics endpoint, with exemplars), plus
	// OTLP when an endpoint is set. Go runtime and process collectors live on the same registry.
	t.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := otelprom.New(otelprom.WithRegisterer(t.Registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}
	for _, r := range cfg.MetricReaders {
		mopts = append(mopts, sdkmetric.WithReader(r))
	}
	if cfg.OTLPEndpoint != "" {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP metric exporter: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp)))
	}
	t.MeterProvider = sdkmetric.NewMeterProvider(mopts...)
	t.shutdowns = append(t.shutdowns, t.MeterProvider.Shutdown)

	// Traces. The sampler comes from OTEL_TRACES_SAMPLER when set (the SDK reads it).
	topts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, sp := range cfg.SpanProcessors {
		topts = append(topts, sdktrace.WithSpanProcessor(sp))
	}
	if cfg.OTLPEndpoint != "" {
		exp, err := newTraceExporter(ctx, cfg, os.Getenv)
		if err != nil {
			return nil, err
		}
		sp, err := newSpanExport(exp, cfg.SpanQueue, t.MeterProvider.Meter(scope))
		if err != nil {
			return nil, err
		}
		topts = append(topts, sdktrace.WithSpanProcessor(sp))
	}
	t.TracerProvider = sdktrace.NewTracerProvider(topts...)
	// After the meter provider's, so it runs first: spans dropped while the last ones are
	// flushed are still counted.
	t.shutdowns = append(t.shutdowns, t.TracerProvider.Shutdown)

	// Logs: JSON on stdout always; the OTLP bridge when an endpoint is set (and logs are not
	// turned off for it); Loki when its URL is set.
	logOut := cfg.LogWriter
	if cfg.AsyncLogWrites {
		lw := newLineWriter(cfg.LogWriter)
		logOut = lw
		// First in the list, so last to run: after every other shutdown's own lines.
		t.shutdowns = append([]func(context.Context) error{lw.Close}, t.shutdowns...)
	}
	handlers := append([]slog.Handler{nil}, cfg.ExtraLogHandlers...) // [0]: stdout, below
	if cfg.OTLPEndpoint != "" && !cfg.NoOTLPLogs {
		exp, err := otlploghttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP log exporter: %w", err)
		}
		t.LoggerProvider = sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
		t.shutdowns = append(t.shutdowns, t.LoggerProvider.Shutdown)
		handlers = append(handlers, newOTLPHandler(cfg.ServiceName, t.LoggerProvider, cfg.LogLevel))
	}
	if cfg.Loki.URL != "" {
		if cfg.Loki.Service == "" {
			cfg.Loki.Service = cfg.ServiceName
		}
		sink, err := newLokiSink(cfg.Loki, t.MeterProvider.Meter(scope))
		if err != nil {
			return nil, err
		}
		// Shutdowns run in reverse order, so the sink flushes its queued lines first,
		// while the providers it reports drops to are still up.
		t.shutdowns = append(t.shutdowns, sink.Shutdown)
		// Loki takes the very line stdout gets, so each record is encoded once for both.
		// The sink first: its Write never fails, so a failing stdout cannot starve it.
		logOut = io.MultiWriter(sink, logOut)
	}
	handlers[0] = slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel})
	t.Logger = slog.New(newTraceHandler(handlers...)).With(slog.String("service", cfg.ServiceName))

	t.Decisions, err = NewRecorder(t.TracerProvider.Tracer(scope), t.MeterProvider.Meter(scope), t.Logger)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// newTraceExporter is Loudly's OTLP/HTTP span exporter (otlpexport.go) unless cfg asks for
// the SDK's, or a TLS setting that only the SDK's carries out is set.
func newTraceExporter(ctx context.Context, cfg Config, getenv func(string) string) (sdktrace.SpanExporter, error) {
	if cfg.SpanEncoder != SpanEncoderSDK {
		hc, ok, err := otlpHTTPFromEnv(cfg.OTLPEndpoint, getenv)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
		}
		if ok {
			return newOTLPSpanExporter(hc), nil
		}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP trace exporter: %w", err)
	}
	return exp, nil
}

// scope is the instrumentation scope name of Loudly's own spans and metrics.
const scope = "loudly"

// Tracer returns the tracer for Loudly's own business spans.
func (t *Telemetry) Tracer() trace.Tracer { return t.TracerProvider.Tracer(scope) }

// Meter returns the meter for Loudly's own instruments.
func (t *Telemetry) Meter() metric.Meter { return t.MeterProvider.Meter(scope) }

// MetricsHandler serves the registry in the OpenMetrics format when the scraper asks for
// it; exemplars are only carried by that format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Shutdown flushes and stops every provider. Call it with a fresh context that has its
// own timeout, not with the context whose cancellation started the shutdown.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for i := len(t.shutdowns) - 1; i >= 0; i-- {
		if err := t.shutdowns[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func versionOr(v string) string {
	if v == "" {
		return "dev"
	}
	return v
}

// instanceID identifies this process among replicas: the host name plus a random suffix,
// so two replicas on one host are still told apart.
func instanceID() string {
	host, _ := os.Hostname()
	return strings.Trim(host+"-"+uuid.NewString()[:8], "-")
}

// ShutdownTimeout is how long programs give telemetry to flush on exit.
const ShutdownTimeout = 5 * time.Second

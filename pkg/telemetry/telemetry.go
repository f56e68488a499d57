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
	// SpanBatch is how many spans one export carries at most. Default DefaultSpanBatch;
	// FromEnv reads OTEL_BSP_MAX_EXPORT_BATCH_SIZE; never above SpanQueue.
	SpanBatch int
	// OTLP says which signals are exported over OTLP and by which protocol; the zero
	// value exports nothing. FromEnv fills it from the standard variables (otlp.go); the
	// SDK's exporters read the rest of OTEL_EXPORTER_OTLP_* themselves.
	OTLP OTLP

	// Loki switches pushing logs to Loki on when its URL is set (FromEnv: LOKI_URL).
	Loki LokiConfig

	// Extra span processors and metric readers, used by tests to capture telemetry in memory.
	SpanProcessors []sdktrace.SpanProcessor
	MetricReaders  []sdkmetric.Reader
	// ExtraLogHandlers receive every log record besides stdout (tests, the Loki sink).
	ExtraLogHandlers []slog.Handler

	removed []string // variables FromEnv found set that Loudly no longer reads
}

// durationText writes a duration as people read one ("1m30s"), not as slog's JSON handler
// does (an integer of nanoseconds).
func durationText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// FromEnv completes cfg from the standard OTEL_* variables, LOKI_URL and LOG_LEVEL, read
// with r: a bad value is one more problem r reports (r.Err) with the rest of the
// program's configuration.
func FromEnv(cfg Config, r *env.Reader) Config {
	cfg.ServiceName = r.String("OTEL_SERVICE_NAME", cfg.ServiceName)
	cfg.Environment = r.String("DEPLOYMENT_ENVIRONMENT", cfg.Environment)
	cfg.OTLP = otlpFromEnv(r, cfg.OTLP)
	cfg.Loki.URL = r.String("LOKI_URL", cfg.Loki.URL)
	cfg.SpanQueue = r.Int("OTEL_BSP_MAX_QUEUE_SIZE", cmp.Or(cfg.SpanQueue, DefaultSpanQueue), 1, 1<<20)
	cfg.SpanBatch = r.Int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", cmp.Or(cfg.SpanBatch, DefaultSpanBatch), 1, 1<<20)
	if v := r.Choice("LOG_LEVEL", "", "debug", "info", "warn", "error"); v != "" {
		_ = cfg.LogLevel.UnmarshalText([]byte(v))
	}
	// TELEMETRY_SPAN_ENCODER chose Loudly's own OTLP encoder until the SDK's exporters
	// replaced it. A service given it still starts, since each of its values asked for
	// spans to be exported and they are; Setup says once that it is no longer read, so
	// the variable does not linger in a deployment as a knob that seems to do something.
	if v := r.String("TELEMETRY_SPAN_ENCODER", ""); v != "" {
		cfg.removed = append(cfg.removed, "TELEMETRY_SPAN_ENCODER="+v)
	}
	return cfg
}

// DefaultSpanQueue is how many spans may wait for export unless OTEL_BSP_MAX_QUEUE_SIZE
// says otherwise: four times the SDK's 2048. With 2048 a saturated run of `make bench`
// on a 2-core machine dropped 1,286 and 1,597 spans (of about 130,000) in bursts while
// the exporter waited for a core; with 8192, none. A span waiting costs a few KiB, so
// the bound is tens of MiB at most.
const DefaultSpanQueue = 8192

// DefaultSpanBatch is how many spans one export carries unless
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE says otherwise: four times the SDK's 512. The batch
// processor has one export in flight at a time, so at saturation its rate is the batch
// size over an export's round trip: with 512, two saturated `make bench` runs on a
// 2-core machine dropped 20,443 and 25,191 spans and settled 0.83 and 0.86 of the
// telemetry-off rate; with 2048, none dropped and 0.97 (docs/performance.md).
const DefaultSpanBatch = 2048

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
	// OTLP when asked for. Go runtime and process collectors live on the same registry.
	t.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := otelprom.New(otelprom.WithRegisterer(t.Registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}
	for _, r := range cfg.MetricReaders {
		mopts = append(mopts, sdkmetric.WithReader(r))
	}
	if cfg.OTLP.Metrics != "" {
		exp, err := newMetricExporter(ctx, cfg.OTLP.Metrics)
		if err != nil {
			return nil, err
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
	if cfg.OTLP.Traces != "" {
		exp, err := newSpanExporter(ctx, cfg.OTLP.Traces)
		if err != nil {
			return nil, err
		}
		sp, err := newSpanExport(exp, cfg.SpanQueue, t.MeterProvider.Meter(scope),
			sdktrace.WithMaxExportBatchSize(min(cmp.Or(cfg.SpanBatch, DefaultSpanBatch), cmp.Or(cfg.SpanQueue, DefaultSpanQueue))))
		if err != nil {
			return nil, err
		}
		topts = append(topts, sdktrace.WithSpanProcessor(sp))
	}
	t.TracerProvider = sdktrace.NewTracerProvider(topts...)
	// After the meter provider's, so it runs first: spans dropped while the last ones are
	// flushed are still counted.
	t.shutdowns = append(t.shutdowns, t.TracerProvider.Shutdown)

	// Logs: JSON on stdout always; the OTLP bridge when asked for; Loki when its URL is set.
	logOut := cfg.LogWriter
	if cfg.AsyncLogWrites {
		lw := newLineWriter(cfg.LogWriter)
		logOut = lw
		// First in the list, so last to run: after every other shutdown's own lines.
		t.shutdowns = append([]func(context.Context) error{lw.Close}, t.shutdowns...)
	}
	handlers := append([]slog.Handler{nil}, cfg.ExtraLogHandlers...) // [0]: stdout, below
	if cfg.OTLP.Logs != "" {
		exp, err := newLogExporter(ctx, cfg.OTLP.Logs)
		if err != nil {
			return nil, err
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
	handlers[0] = slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel, ReplaceAttr: durationText})
	t.Logger = slog.New(newTraceHandler(handlers...)).With(slog.String("service", cfg.ServiceName))

	for _, v := range cfg.removed {
		t.Logger.Warn("configuration no longer read: spans are exported by the OpenTelemetry SDK's OTLP exporter, configured by OTEL_EXPORTER_OTLP_*; remove the variable", "variable", v)
	}

	t.Decisions, err = NewRecorder(t.TracerProvider.Tracer(scope), t.MeterProvider.Meter(scope), t.Logger)
	if err != nil {
		return nil, err
	}
	return t, nil
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

package telemetry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"loudly/pkg/env"
)

// OTLP says which signals leave over OTLP, and by which protocol. An empty Protocol
// keeps that signal home: no exporter, no connection attempt, no error spam.
//
// Everything else about an export — the endpoint, TLS, headers, timeout, compression,
// retries — is not here: the OpenTelemetry SDK's own exporters read it from the
// standard OTEL_EXPORTER_OTLP_* variables (the general one and the per-signal one, which
// wins) of the process environment, the same way for every signal.
type OTLP struct {
	Traces, Metrics, Logs Protocol
}

// Protocol is an OTLP transport, named as OTEL_EXPORTER_OTLP_PROTOCOL names it.
type Protocol string

const (
	ProtocolHTTP Protocol = "http/protobuf" // the specification's default
	ProtocolGRPC Protocol = "grpc"
)

// otlpFromEnv reads which signals to export and how. A signal is exported when an
// endpoint is set for it (OTEL_EXPORTER_OTLP_ENDPOINT or its own
// OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT), or when OTEL_{TRACES,METRICS,
// LOGS}_EXPORTER=otlp asks for it explicitly, which sends to the SDK's default endpoint
// for the protocol (localhost:4318 for http/protobuf, localhost:4317 for grpc).
// OTEL_<SIGNAL>_EXPORTER=none keeps a signal home whatever the endpoints say. A signal
// the variables say nothing about keeps its setting in def.
//
// The specification's default is to export to localhost whether or not a collector
// listens there; Loudly's is to export only where it is told, since a service started
// without a collector (a test, `loudly demo`, a laptop) would otherwise log a failed
// export every few seconds for its whole life.
func otlpFromEnv(r *env.Reader, def OTLP) OTLP {
	general := r.Choice("OTEL_EXPORTER_OTLP_PROTOCOL", string(ProtocolHTTP), protocols...)
	endpoint := r.String("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	signal := func(name string, def Protocol, exporters ...string) Protocol {
		p := r.Choice("OTEL_EXPORTER_OTLP_"+name+"_PROTOCOL", general, protocols...)
		switch r.Choice("OTEL_"+name+"_EXPORTER", "", exporters...) {
		case "otlp":
			return Protocol(p)
		case "":
			if endpoint != "" || r.String("OTEL_EXPORTER_OTLP_"+name+"_ENDPOINT", "") != "" {
				return Protocol(p)
			}
			return def
		}
		return ""
	}
	o := OTLP{
		Traces: signal("TRACES", def.Traces, "otlp", "none"),
		// Prometheus (the /metrics endpoint) is always served; "prometheus" or "none"
		// only keep metrics off OTLP.
		Metrics: signal("METRICS", def.Metrics, "otlp", "prometheus", "none"),
		Logs:    signal("LOGS", def.Logs, "otlp", "none"),
	}
	checkOTLPEnv(r)
	return o
}

// protocols are the values of OTEL_EXPORTER_OTLP_PROTOCOL the Go SDK exports every signal
// with. The specification's third, http/json, is refused: at v1.47 only the SDK's trace
// exporter speaks it, so metrics and logs would go out as protobuf.
var protocols = []string{string(ProtocolHTTP), string(ProtocolGRPC)}

// checkOTLPEnv refuses, at start-up, values of OTEL_EXPORTER_OTLP_* that the SDK's
// exporters would not refuse: they report an unparsable timeout, a missing certificate
// file or a malformed header to OpenTelemetry's global error handler (stderr) and go on
// without it — a typo in a certificate path would quietly trust the system's roots, one
// in a compression name quietly send uncompressed. Nothing here is used for the export
// itself; the exporters read every variable again.
func checkOTLPEnv(r *env.Reader) {
	for _, sig := range []string{"", "TRACES_", "METRICS_", "LOGS_"} {
		name := func(v string) string { return "OTEL_EXPORTER_OTLP_" + sig + v }
		if v := r.String(name("ENDPOINT"), ""); v != "" {
			if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				r.Reject(name("ENDPOINT"), v, "want an http:// or https:// URL with a host (https, or http with OTEL_EXPORTER_OTLP_INSECURE unset, means TLS)")
			}
		}
		if v := r.String(name("INSECURE"), ""); v != "" && !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
			r.Reject(name("INSECURE"), v, "want true or false")
		}
		if v := r.String(name("COMPRESSION"), ""); v != "" && v != "gzip" && v != "none" {
			r.Reject(name("COMPRESSION"), v, "want gzip or none")
		}
		if v := r.String(name("TIMEOUT"), ""); v != "" {
			if ms, err := strconv.Atoi(v); err != nil || ms < 0 {
				r.Reject(name("TIMEOUT"), v, "want a whole number of milliseconds")
			}
		}
		if v := r.String(name("HEADERS"), ""); v != "" {
			if problem := headersProblem(v); problem != "" {
				r.Reject(name("HEADERS"), "(not shown: headers may hold secrets)", problem)
			}
		}
		if v := r.String(name("CERTIFICATE"), ""); v != "" {
			pem, err := os.ReadFile(v)
			if err != nil {
				r.Reject(name("CERTIFICATE"), v, err.Error())
			} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
				r.Reject(name("CERTIFICATE"), v, "no PEM certificate in the file")
			}
		}
		cert, key := r.String(name("CLIENT_CERTIFICATE"), ""), r.String(name("CLIENT_KEY"), "")
		switch {
		case cert == "" && key == "":
		case key == "":
			r.Reject(name("CLIENT_CERTIFICATE"), cert, "set "+name("CLIENT_KEY")+" too: the SDK ignores a client certificate without its key")
		case cert == "":
			r.Reject(name("CLIENT_KEY"), key, "set "+name("CLIENT_CERTIFICATE")+" too: the SDK ignores a client key without its certificate")
		default:
			if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
				r.Reject(name("CLIENT_CERTIFICATE"), cert, "with "+key+": "+err.Error())
			}
		}
	}
}

// headersProblem says what the SDK would skip in an OTEL_EXPORTER_OTLP_HEADERS list
// ("k1=v1,k2=v2", values percent-encoded), or "".
func headersProblem(list string) string {
	for item := range strings.SplitSeq(list, ",") {
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsFunc(k, func(c rune) bool { return !isTokenChar(c) }) {
			return "want key=value pairs separated by commas, each key an HTTP header name"
		}
		if _, err := url.PathUnescape(v); err != nil {
			return "a value is not percent-encoded correctly"
		}
	}
	return ""
}

// isTokenChar is RFC 9110's tchar: what an HTTP header name is made of.
func isTokenChar(c rune) bool {
	return c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.ContainsRune("!#$%&'*+-.^_`|~", c))
}

// The exporters, one per signal and protocol: the SDK's own, each reading the
// OTEL_EXPORTER_OTLP_* variables itself. None of them connects before its first export.

func newSpanExporter(ctx context.Context, p Protocol) (sdktrace.SpanExporter, error) {
	return newExporter(ctx, "trace", p,
		func(ctx context.Context) (sdktrace.SpanExporter, error) { return otlptracegrpc.New(ctx) },
		func(ctx context.Context) (sdktrace.SpanExporter, error) { return otlptracehttp.New(ctx) })
}

func newMetricExporter(ctx context.Context, p Protocol) (sdkmetric.Exporter, error) {
	return newExporter(ctx, "metric", p,
		func(ctx context.Context) (sdkmetric.Exporter, error) { return otlpmetricgrpc.New(ctx) },
		func(ctx context.Context) (sdkmetric.Exporter, error) { return otlpmetrichttp.New(ctx) })
}

func newLogExporter(ctx context.Context, p Protocol) (sdklog.Exporter, error) {
	return newExporter(ctx, "log", p,
		func(ctx context.Context) (sdklog.Exporter, error) { return otlploggrpc.New(ctx) },
		func(ctx context.Context) (sdklog.Exporter, error) { return otlploghttp.New(ctx) })
}

// newExporter builds a signal's exporter for protocol p with grpc or http.
func newExporter[E any](ctx context.Context, signal string, p Protocol, grpc, http func(context.Context) (E, error)) (E, error) {
	build := http
	if p == ProtocolGRPC {
		build = grpc
	}
	exp, err := build(ctx)
	if err != nil {
		return exp, fmt.Errorf("telemetry: OTLP %s exporter (%s): %w", signal, p, err)
	}
	return exp, nil
}

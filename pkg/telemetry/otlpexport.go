package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"loudly/pkg/env"
)

// otlpHTTPConfig is what the span exporter needs of the standard OTEL_EXPORTER_OTLP_*
// variables (the traces-specific one of each wins over the general one).
type otlpHTTPConfig struct {
	URL     string // the full traces URL
	Headers http.Header
	Timeout time.Duration // one request
	Gzip    bool
}

// tlsVars are the settings only the SDK's exporter carries out: with any of them set,
// Setup uses it instead of the encoder here.
var tlsVars = []string{"CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY", "INSECURE"}

// otlpHTTPFromEnv reads the exporter's settings for the base endpoint base (an
// OTEL_EXPORTER_OTLP_ENDPOINT: the traces go to its /v1/traces) through getenv. ok is false
// when a TLS setting asks for the SDK's exporter; a bad value is an error.
func otlpHTTPFromEnv(base string, getenv func(string) string) (cfg otlpHTTPConfig, ok bool, err error) {
	for _, v := range tlsVars {
		if getenv("OTEL_EXPORTER_OTLP_"+v) != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_"+v) != "" {
			return cfg, false, nil
		}
	}
	r := env.New(getenv)
	// either returns the traces-specific variable when it is set, else the general one.
	either := func(name string) (string, string) {
		if v := r.String("OTEL_EXPORTER_OTLP_TRACES_"+name, ""); v != "" {
			return "OTEL_EXPORTER_OTLP_TRACES_" + name, v
		}
		return "OTEL_EXPORTER_OTLP_" + name, r.String("OTEL_EXPORTER_OTLP_"+name, "")
	}
	if name, v := either("ENDPOINT"); strings.Contains(name, "TRACES") {
		cfg.URL = r.URL(name, v, "http", "https")
	} else {
		cfg.URL = tracesURL(base)
		if u, perr := url.Parse(cfg.URL); perr != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			r.Reject("OTEL_EXPORTER_OTLP_ENDPOINT", base, "want an http:// or https:// URL with a host")
		}
	}
	cfg.Timeout = 10 * time.Second // the SDK's default
	if name, v := either("TIMEOUT"); v != "" {
		ms, perr := strconv.Atoi(v)
		if perr != nil || ms <= 0 {
			r.Reject(name, v, "want a positive number of milliseconds")
		} else {
			cfg.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	name, v := either("COMPRESSION")
	switch strings.ToLower(v) {
	case "", "none":
	case "gzip":
		cfg.Gzip = true
	default:
		r.Reject(name, v, "want gzip or none")
	}
	cfg.Headers = http.Header{}
	if name, v := either("HEADERS"); v != "" {
		if perr := parseOTLPHeaders(v, cfg.Headers); perr != nil {
			r.Reject(name, "(not shown: headers may hold secrets)", perr.Error())
		}
	}
	return cfg, true, r.Err()
}

// tracesURL is base with the traces path appended, as the OTLP specification says for
// OTEL_EXPORTER_OTLP_ENDPOINT.
func tracesURL(base string) string {
	return strings.TrimRight(base, "/") + "/v1/traces"
}

// parseOTLPHeaders reads the W3C-baggage-like list "k1=v1,k2=v2" with percent-encoded
// values into h.
func parseOTLPHeaders(s string, h http.Header) error {
	for item := range strings.SplitSeq(s, ",") {
		k, v, found := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !found || k == "" {
			return fmt.Errorf("want key=value pairs separated by commas")
		}
		key, err1 := url.PathUnescape(k)
		val, err2 := url.PathUnescape(strings.TrimSpace(v))
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("a key or value is not percent-encoded correctly")
		}
		h.Add(key, val)
	}
	return nil
}

// otlpSpanExporter sends spans over OTLP/HTTP in protobuf, encoded by spanEncoder. What it
// does besides encoding follows the SDK's OTLP/HTTP exporter: a POST to the traces URL,
// retried with backoff on 429, 502, 503 and 504 (honouring Retry-After) and on transport
// errors until the export's context ends, and a partial success counted (rejectedError).
type otlpSpanExporter struct {
	cfg    otlpHTTPConfig
	client *http.Client
	bufs   sync.Pool // *exportBuffers

	mu     sync.Mutex
	closed bool
}

type exportBuffers struct {
	enc spanEncoder
	gz  bytes.Buffer
	zw  *gzip.Writer
}

// Backoff between attempts: from exportRetryFirst, doubling up to exportRetryMax.
var (
	exportRetryFirst = 500 * time.Millisecond
	exportRetryMax   = 8 * time.Second
)

// maxResponse bounds what is read of a collector's answer.
const maxResponse = 64 << 10

func newOTLPSpanExporter(cfg otlpHTTPConfig) *otlpSpanExporter {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	return &otlpSpanExporter{cfg: cfg, client: &http.Client{Transport: tr, Timeout: cfg.Timeout}}
}

// rejectedError is a collector's partial success: it took the request but not n of its
// spans.
type rejectedError struct {
	n   int64
	msg string
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("OTLP span export: the collector rejected %d spans: %s", e.n, e.msg)
}

func (x *otlpSpanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	x.mu.Lock()
	closed := x.closed
	x.mu.Unlock()
	if closed {
		return errors.New("OTLP span export: exporter is shut down")
	}
	bufs, _ := x.bufs.Get().(*exportBuffers)
	if bufs == nil {
		bufs = &exportBuffers{}
	}
	defer x.bufs.Put(bufs)
	body := bufs.enc.encode(spans)
	if x.cfg.Gzip {
		bufs.gz.Reset()
		if bufs.zw == nil {
			bufs.zw = gzip.NewWriter(&bufs.gz)
		} else {
			bufs.zw.Reset(&bufs.gz)
		}
		_, _ = bufs.zw.Write(body) // a bytes.Buffer does not fail
		_ = bufs.zw.Close()
		body = bufs.gz.Bytes()
	}

	wait := exportRetryFirst
	for attempt := 1; ; attempt++ {
		retryAfter, err := x.post(ctx, body)
		if err == nil {
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return err
		}
		var rej *rejectedError
		if errors.As(err, &rej) {
			return err
		}
		d := wait
		if retryAfter > 0 {
			d = retryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return fmt.Errorf("OTLP span export: gave up after %d attempts: %w", attempt, err)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("OTLP span export: gave up after %d attempts: %w", attempt, err)
		case <-t.C:
		}
		wait = min(2*wait, exportRetryMax)
	}
}

// permanentError is an answer that a retry would only repeat.
type permanentError struct{ error }

// post sends body once. An error is retryable unless it is a permanentError or a
// rejectedError; retryAfter is the collector's Retry-After, when it gave one.
func (x *otlpSpanExporter) post(ctx context.Context, body []byte) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, permanentError{fmt.Errorf("OTLP span export: %w", err)}
	}
	for k, v := range x.cfg.Headers {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "loudly-otlp-span-exporter")
	if x.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := x.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, permanentError{fmt.Errorf("OTLP span export: %w", err)}
		}
		return 0, fmt.Errorf("OTLP span export: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		if resp.Header.Get("Content-Type") != "application/x-protobuf" || len(answer) == 0 {
			return 0, nil
		}
		n, msg, perr := decodePartialSuccess(answer)
		if perr != nil {
			return 0, permanentError{fmt.Errorf("OTLP span export: the collector's answer: %w", perr)}
		}
		if n != 0 || msg != "" {
			return 0, &rejectedError{n: n, msg: msg}
		}
		return 0, nil
	case code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retryAfter, fmt.Errorf("OTLP span export: %s: %s", resp.Status, bodyText(answer))
	default:
		return 0, permanentError{fmt.Errorf("OTLP span export: %s: %s", resp.Status, bodyText(answer))}
	}
}

func bodyText(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty)"
	}
	if len(s) > 256 {
		s = s[:256] + "…"
	}
	return s
}

// decodePartialSuccess reads an ExportTraceServiceResponse: its partial_success (field 1)
// holds rejected_spans (1, int64) and error_message (2, string). Unknown fields are
// skipped, as protobuf requires.
func decodePartialSuccess(b []byte) (rejected int64, msg string, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, "", protowire.ParseError(n)
		}
		b = b[n:]
		if num != 1 || typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, "", protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		ps, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, "", protowire.ParseError(n)
		}
		b = b[n:]
		for len(ps) > 0 {
			num, typ, n := protowire.ConsumeTag(ps)
			if n < 0 {
				return 0, "", protowire.ParseError(n)
			}
			ps = ps[n:]
			switch {
			case num == 1 && typ == protowire.VarintType:
				v, n := protowire.ConsumeVarint(ps)
				if n < 0 {
					return 0, "", protowire.ParseError(n)
				}
				rejected, ps = int64(v), ps[n:]
			case num == 2 && typ == protowire.BytesType:
				v, n := protowire.ConsumeBytes(ps)
				if n < 0 {
					return 0, "", protowire.ParseError(n)
				}
				msg, ps = string(v), ps[n:]
			default:
				n := protowire.ConsumeFieldValue(num, typ, ps)
				if n < 0 {
					return 0, "", protowire.ParseError(n)
				}
				ps = ps[n:]
			}
		}
	}
	return rejected, msg, nil
}

func (x *otlpSpanExporter) Shutdown(ctx context.Context) error {
	x.mu.Lock()
	x.closed = true
	x.mu.Unlock()
	x.client.CloseIdleConnections()
	return ctx.Err()
}

// Package httpapi is the HTTP boundary both services share: one error type whose codes
// map to HTTP statuses in one place, JSON responses, and the server with its standard
// endpoints (/healthz, /readyz, /metrics) and otelhttp instrumentation.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"loudly/pkg/health"
	"loudly/pkg/telemetry"
)

// Error codes. Each maps to exactly one HTTP status.
const (
	EInvalid     = "invalid"
	ETooLarge    = "too_large"
	EUnsupported = "unsupported_media_type"
	EConflict    = "conflict"
	ENotFound    = "not_found"
	EInternal    = "internal"
	// EUnavailable: the server cannot do the work just now (its database is failing over,
	// or unreachable); the same request, retried after Retry-After, can succeed.
	EUnavailable = "unavailable"
)

var statuses = map[string]int{
	EInvalid:     http.StatusBadRequest,
	ETooLarge:    http.StatusRequestEntityTooLarge,
	EUnsupported: http.StatusUnsupportedMediaType,
	EConflict:    http.StatusConflict,
	ENotFound:    http.StatusNotFound,
	EInternal:    http.StatusInternalServerError,
	EUnavailable: http.StatusServiceUnavailable,
}

// Error is an error a client may see. Reason is a short stable token (a metric label);
// Message is for people.
type Error struct {
	Code    string `json:"code"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds a client error.
func Errorf(code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Status is the HTTP status for err: its code's, or 500 for anything that is not an *Error.
func Status(err error) int {
	var e *Error
	if errors.As(err, &e) {
		if s, ok := statuses[e.Code]; ok {
			return s
		}
	}
	return http.StatusInternalServerError
}

// WriteError answers with err as a JSON body. Errors that are not *Error are internal:
// they are logged in full and the client only sees "Internal error".
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var e *Error
	var se *serverError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &se) && se.unavailable:
		logger.WarnContext(r.Context(), "unavailable", "method", r.Method, "path", r.URL.Path, "reason", se.reason, "error", err)
		e = &Error{Code: EUnavailable, Reason: se.reason, Message: "Service temporarily unavailable; retry (with the same Idempotency-Key, if any)"}
		w.Header().Set("Retry-After", RetryAfter)
	default:
		logger.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "error", err)
		e = &Error{Code: EInternal, Message: "Internal error"}
	}
	WriteJSON(w, Status(e), map[string]*Error{"error": e})
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Server is a service's HTTP server: its API routes plus /healthz, /readyz and /metrics.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen opens addr (":0" picks a free port) and prepares a server for api.
func Listen(addr string, api *http.ServeMux, checks *health.Checks, tel *telemetry.Telemetry, name string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("HTTP_ADDR %s: %w", addr, err)
	}
	checks.Register(api)
	api.Handle("GET /metrics", tel.MetricsHandler())
	h := otelhttp.NewHandler(limitBodies(api, tel, MaxBodyBytes), name,
		otelhttp.WithTracerProvider(tel.TracerProvider),
		otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}),
		// Probes and scrapes would otherwise be most of the traces.
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		}),
	)
	return &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          slog.NewLogLogger(tel.Logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Shutdown.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting requests and waits for those in flight.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// MaxBodyBytes bounds every request body of a service's API. A handler may read with a
// smaller limit of its own; none gets a larger one.
const MaxBodyBytes = 64 << 10

// After refusing a body that is still arriving, the server reads and discards up to
// drainBytes more of it for at most drainTimeout. A connection closed with unread bytes
// in its receive buffer is reset, and the reset throws away the 413 the client has not
// read yet: a client that sends its whole body before reading (curl after 100 Continue)
// would see "connection reset by peer" instead of the error.
const (
	drainBytes   = 4 << 20
	drainTimeout = 5 * time.Second
)

// limitBodies refuses request bodies over limit. A Content-Length over it is refused from
// the headers: 413 with the JSON error before the handler runs and before any body is
// read, so a client that sent "Expect: 100-continue" gets the 413 instead of a 100
// Continue and never sends the body. A body of unknown length (chunked) reaches the
// handler through http.MaxBytesReader, and the handler answers its *http.MaxBytesError
// with 413 as usual; the rest of the body is drained afterwards, so the client can read
// that answer. Either way the connection is closed after the answer.
func limitBodies(api *http.ServeMux, tel *telemetry.Telemetry, limit int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			// The mux has not routed the request yet: ask it for the route the decision
			// is recorded under, as a handler would record it.
			_, pattern := api.Handler(r)
			e := Errorf(ETooLarge, "body_too_large", "request body is larger than %d bytes", limit)
			tel.Decisions.Record(r.Context(), telemetry.Decision{
				Stage: telemetry.StageHTTP, Outcome: telemetry.Invalid, Reason: e.Reason, EventType: pattern, Err: e,
			})
			w.Header().Set("Connection", "close")
			WriteError(w, r, tel.Logger, e)
			// Without "Expect: 100-continue" the body is already on its way.
			if !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
				drain(w, r.Body)
			}
			return
		}
		if r.Body == nil || r.Body == http.NoBody {
			api.ServeHTTP(w, r)
			return
		}
		body := r.Body
		limited := &limitedBody{ReadCloser: http.MaxBytesReader(w, body, limit)}
		r.Body = limited
		api.ServeHTTP(w, r)
		if limited.exceeded {
			drain(w, body)
		}
	})
}

// limitedBody notes whether the handler's reads ran past the limit.
type limitedBody struct {
	io.ReadCloser
	exceeded bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		b.exceeded = true
	}
	return n, err
}

// drain sends the answer written so far, then reads and discards what is left of body,
// bounded by drainBytes and drainTimeout.
func drain(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	_ = rc.SetReadDeadline(time.Now().Add(drainTimeout))
	_, _ = io.CopyN(io.Discard, body, drainBytes)
}

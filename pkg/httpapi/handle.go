package httpapi

import (
	"errors"
	"net/http"

	"loudly/pkg/telemetry"
)

// HandlerFunc is an API handler that returns its error instead of writing it. It writes
// its own success answer (and records its own success decision, which only it can name);
// it returns an error only before it has written anything.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adapts h to net/http so that no error answer can go unrecorded: every error h
// returns is written (WriteError: a JSON body, the status of its code from the one
// mapping) and recorded as a decision of stage http on the request's span, counter and
// log. A client error (*Error, 4xx) is invalid — the request can never succeed as sent —
// except not_found, which is rejected: a valid request for something that is not there.
// Anything else is a server error (500, "Internal error" to the client, in full in the
// log), recorded as retry: the client may try again. Internal names its reason;
// Unavailable marks a failure of the moment (503 with Retry-After, also retry).
func Handle(tel *telemetry.Telemetry, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		d := telemetry.Decision{Stage: telemetry.StageHTTP, Outcome: telemetry.Retry, Reason: "internal", EventType: r.Pattern, Err: err}
		var e *Error
		var se *serverError
		switch {
		case errors.As(err, &e):
			d.Outcome, d.Reason = telemetry.Invalid, e.Reason
			if e.Code == ENotFound {
				d.Outcome = telemetry.Rejected
			}
			if d.Reason == "" {
				d.Reason = e.Code
			}
		case errors.As(err, &se):
			d.Reason = se.reason
		}
		tel.Decisions.Record(r.Context(), d)
		WriteError(w, r, tel.Logger, err)
	})
}

// Internal marks err as a server failure with a metric-safe reason ("db_error") for the
// decision Handle records; the client still sees only "Internal error".
func Internal(reason string, err error) error { return &serverError{reason: reason, err: err} }

// RetryAfter is the Retry-After of a 503 answer, in seconds: about the time a failover
// takes to give the services a new primary.
const RetryAfter = "1"

// Unavailable marks err as a failure of the moment with a metric-safe reason
// ("db_unavailable"): the client gets 503, Retry-After and code "unavailable", and the
// decision Handle records is retry. Use it when the same request can succeed in a moment
// (postgres.Unavailable says so of a database error).
func Unavailable(reason string, err error) error {
	return &serverError{reason: reason, err: err, unavailable: true}
}

// serverError is a failure on the server's side (Internal, Unavailable): retry, with
// its reason; unavailable answers 503 instead of 500.
type serverError struct {
	reason      string
	err         error
	unavailable bool
}

func (e *serverError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *serverError) Unwrap() error { return e.err }

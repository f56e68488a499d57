package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"loudly/pkg/httpapi"
	"loudly/pkg/telemetry/telemetrytest"
)

func TestHandle_WritesAndRecordsEveryErrorAnswer(t *testing.T) {
	for _, c := range []struct {
		name     string
		err      error
		status   int
		outcome  string
		reason   string
		code     string
		noDetail bool // the client sees "Internal error", not the cause
	}{
		{"a bad request is invalid", httpapi.Errorf(httpapi.EInvalid, "bad_id", "not a UUID"), 400, "invalid", "bad_id", "invalid", false},
		{"a conflict is invalid", httpapi.Errorf(httpapi.EConflict, "idempotency_conflict", "reused"), 409, "invalid", "idempotency_conflict", "conflict", false},
		{"a body too large is invalid", httpapi.Errorf(httpapi.ETooLarge, "body_too_large", "big"), 413, "invalid", "body_too_large", "too_large", false},
		{"not found is rejected", httpapi.Errorf(httpapi.ENotFound, "unknown_thing", "no such thing"), 404, "rejected", "unknown_thing", "not_found", false},
		{"a client error without a reason is recorded by its code", httpapi.Errorf(httpapi.EUnsupported, "", "json only"), 415, "invalid", "unsupported_media_type", "unsupported_media_type", false},
		{"a server failure is retry, named by Internal", httpapi.Internal("db_error", errors.New("connection refused")), 500, "retry", "db_error", "internal", true},
		{"any other error is retry, internal", errors.New("boom"), 500, "retry", "internal", "internal", true},
		{"a failure of the moment is retry, 503", httpapi.Unavailable("db_unavailable", errors.New("read-only")), 503, "retry", "db_unavailable", "unavailable", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tel := telemetrytest.New(t, "api")
			mux := http.NewServeMux()
			mux.Handle("GET /v1/things/{id}", httpapi.Handle(tel.Telemetry, func(w http.ResponseWriter, r *http.Request) error { return c.err }))
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/things/x", nil))

			var body struct{ Error httpapi.Error }
			if rec.Code != c.status || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body.Error.Code != c.code {
				t.Fatalf("answer %d %s, want %d with code %s", rec.Code, rec.Body, c.status, c.code)
			}
			if c.noDetail && body.Error.Message != "Internal error" {
				t.Errorf("a server failure shows the client %q", body.Error.Message)
			}
			if ra := rec.Header().Get("Retry-After"); (c.status == 503) != (ra != "") {
				t.Errorf("status %d with Retry-After %q: want it on 503 only", rec.Code, ra)
			}
			if c.status == 503 && (body.Error.Reason != c.reason || body.Error.Message == "" || strings.Contains(body.Error.Message, "read-only")) {
				t.Errorf("503 body %+v: want reason %s and a message without the cause", body.Error, c.reason)
			}
			ds := tel.Decisions(map[string]string{"stage": "http"})
			if len(ds) != 1 || ds[0]["outcome"] != c.outcome || ds[0]["reason"] != c.reason || ds[0]["event_type"] != "GET /v1/things/{id}" {
				t.Errorf("decisions %v, want one %s/%s for the route", ds, c.outcome, c.reason)
			}
			if n := tel.CounterValue(t, "loudly.decisions", map[string]string{"stage": "http", "outcome": c.outcome, "reason": c.reason}); n != 1 {
				t.Errorf("loudly.decisions{stage=http,outcome=%s,reason=%s} = %d, want 1", c.outcome, c.reason, n)
			}
		})
	}
	t.Run("a success records nothing here: the handler names its own decision", func(t *testing.T) {
		tel := telemetrytest.New(t, "api")
		rec := httptest.NewRecorder()
		httpapi.Handle(tel.Telemetry, func(w http.ResponseWriter, r *http.Request) error {
			httpapi.WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
			return nil
		}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != 200 || len(tel.Decisions(map[string]string{"stage": "http"})) != 0 {
			t.Errorf("answer %d, decisions %v", rec.Code, tel.Decisions(nil))
		}
	})
}

package order

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/envelope"
	"loudly/pkg/httpapi"
	"loudly/pkg/postgres"
	"loudly/pkg/strictjson"
	"loudly/pkg/telemetry"
	"loudly/services/events"
)

// MaxRequestBytes bounds a request body (POST /v1/orders, POST /v1/orders:batchGet).
const MaxRequestBytes = 64 << 10

// CreateOrderRequest is the body of POST /v1/orders.
type CreateOrderRequest struct {
	CustomerID string        `json:"customer_id"`
	Lines      []events.Line `json:"lines"`
}

// createdResponse is the 202 answer, stored for idempotent replays.
type createdResponse struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	TraceParent string `json:"traceparent,omitempty"`
}

// DecodeCreateOrder reads and validates a POST /v1/orders body. Every failure is an
// *httpapi.Error with a reason token, so the caller can answer and record it.
func DecodeCreateOrder(body io.Reader) (CreateOrderRequest, error) {
	var req CreateOrderRequest
	data, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return req, httpapi.Errorf(httpapi.ETooLarge, "body_too_large", "request body is larger than %d bytes", tooBig.Limit)
		}
		return req, httpapi.Errorf(httpapi.EInvalid, "unreadable_body", "reading the body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return req, httpapi.Errorf(httpapi.EInvalid, "empty_body", "request body is empty")
	}
	if err := decodeJSON(data, &req); err != nil {
		return req, err
	}
	if err := (events.OrderPlaced{CustomerID: req.CustomerID, Lines: req.Lines}).Validate(); err != nil {
		var inv *envelope.Invalid
		if errors.As(err, &inv) {
			return req, httpapi.Errorf(httpapi.EInvalid, inv.Reason, "%s", inv.Detail)
		}
		return req, httpapi.Errorf(httpapi.EInvalid, "invalid", "%v", err)
	}
	return req, nil
}

// decodeJSON reads a request body that is I-JSON (RFC 7493) into v: a duplicate member
// name or invalid UTF-8 is refused with its own reason, never silently resolved or
// replaced, and every failure is an *httpapi.Error with a reason token.
func decodeJSON(data []byte, v any) error {
	err := strictjson.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	var sj *strictjson.Error
	switch {
	case errors.As(err, &typeErr):
		return httpapi.Errorf(httpapi.EInvalid, "bad_type", "field %q must be %s", typeErr.Field, typeErr.Type)
	case errors.Is(err, strictjson.ErrUnknownField) && errors.As(err, &sj):
		return httpapi.Errorf(httpapi.EInvalid, "unknown_field", "%s", sj.Detail)
	case errors.Is(err, strictjson.ErrDuplicateMember), errors.Is(err, strictjson.ErrInvalidUTF8), errors.Is(err, strictjson.ErrNoncharacter):
		errors.As(err, &sj)
		return httpapi.Errorf(httpapi.EInvalid, sj.Reason, "request body is not I-JSON: %s", sj.Detail)
	default:
		return httpapi.Errorf(httpapi.EInvalid, "malformed_json", "request body is not valid JSON: %v", err)
	}
}

// MaxBatchGet bounds the ids of one POST /v1/orders:batchGet.
const MaxBatchGet = 1000

// BatchGetRequest is the body of POST /v1/orders:batchGet.
type BatchGetRequest struct {
	IDs []string `json:"ids"`
}

// BatchGetResponse answers it: the orders found (their status and timestamps, without
// lines, history or events: GET /v1/orders/{id} has those), in no particular order, and
// the ids asked for that are not orders.
type BatchGetResponse struct {
	Orders   []OrderStatus `json:"orders"`
	NotFound []string      `json:"not_found"`
}

// DecodeBatchGet reads and validates a POST /v1/orders:batchGet body: 1 to MaxBatchGet
// ids, each a UUID, returned in canonical form without repeats. Every failure is an
// *httpapi.Error with a reason token.
func DecodeBatchGet(body []byte) ([]string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, httpapi.Errorf(httpapi.EInvalid, "empty_body", "request body is empty")
	}
	var req BatchGetRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	if len(req.IDs) == 0 || len(req.IDs) > MaxBatchGet {
		return nil, httpapi.Errorf(httpapi.EInvalid, "bad_id_count", "ids must hold 1 to %d order ids, got %d", MaxBatchGet, len(req.IDs))
	}
	ids := make([]string, 0, len(req.IDs))
	seen := make(map[string]bool, len(req.IDs))
	for i, id := range req.IDs {
		u, err := uuid.Parse(id)
		if err != nil || len(id) != 36 {
			return nil, httpapi.Errorf(httpapi.EInvalid, "bad_order_id", "ids[%d] = %q is not a UUID", i, id)
		}
		if c := u.String(); !seen[c] {
			seen[c] = true
			ids = append(ids, c)
		}
	}
	return ids, nil
}

// api serves the order endpoints.
type api struct {
	store    *store
	groups   *grouper
	tel      *telemetry.Telemetry
	accepted metric.Int64Counter
}

// routes mounts the endpoints through httpapi.Handle, which writes and records every error
// answer: each 4xx and 5xx is a branch a reader of the trace, the logs and the decision
// counter can see.
func (a *api) routes(mux *http.ServeMux) {
	mux.Handle("POST /v1/orders", httpapi.Handle(a.tel, a.createOrder))
	mux.Handle("GET /v1/orders/{id}", httpapi.Handle(a.tel, a.getOrder))
	mux.Handle("POST /v1/orders:batchGet", httpapi.Handle(a.tel, a.batchGet))
}

func (a *api) createOrder(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if err := jsonContent(r); err != nil {
		return err
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > 255 || strings.ContainsFunc(key, func(c rune) bool { return c < 0x20 || c > 0x7e }) {
		return httpapi.Errorf(httpapi.EInvalid, "bad_idempotency_key", "Idempotency-Key must be at most 255 printable ASCII characters")
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	req, err := DecodeCreateOrder(bytes.NewReader(body))
	if err != nil {
		return err
	}

	sc := trace.SpanContextFromContext(ctx)
	// Time-ordered (UUID version 7), like event ids: the order tables' indexes on it grow at
	// their end instead of at random pages (see envelope.New).
	o := Order{ID: uuid.Must(uuid.NewV7()).String(), CustomerID: req.CustomerID, Lines: req.Lines}
	if sc.IsValid() {
		o.TraceID = sc.TraceID().String()
	}
	hash := sha256.Sum256(body)
	// The answer is known before the database is asked (nothing in it comes from there),
	// so it is stored with the idempotency key in the same statement.
	resp, err := json.Marshal(createdResponse{ID: o.ID, Status: StatusPending, TraceParent: traceparent(sc)})
	if err != nil {
		return httpapi.Internal("encode_response", err)
	}
	res, err := a.groups.create(ctx, o, key, hash[:], resp)
	switch {
	case errors.Is(err, errIdempotencyConflict):
		return httpapi.Errorf(httpapi.EConflict, "idempotency_conflict", "Idempotency-Key %q was used for a different request", key)
	case err != nil:
		return dbError(err)
	}
	w.Header().Set("Location", "/v1/orders/"+res.order.ID)
	if res.replayed {
		a.tel.Decisions.Record(ctx, telemetry.Decision{Stage: telemetry.StageHTTP, Outcome: telemetry.Duplicate,
			Reason: "idempotency_replay", EventType: r.Pattern, Key: res.order.ID, KeyName: KeyName})
		w.Header().Set("Idempotent-Replayed", "true")
	} else {
		a.accepted.Add(ctx, 1)
		a.tel.Decisions.Record(ctx, telemetry.Decision{Stage: telemetry.StageHTTP, Outcome: telemetry.Applied,
			Reason: "order_accepted", EventType: r.Pattern, Key: res.order.ID, KeyName: KeyName,
			Attrs: []slog.Attr{slog.Int("lines", len(req.Lines))}})
	}
	if sc.IsValid() {
		w.Header().Set("Traceparent", traceparent(sc))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(append(res.response, '\n'))
	return nil
}

func (a *api) getOrder(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return httpapi.Errorf(httpapi.EInvalid, "bad_order_id", "order id %q is not a UUID", id)
	}
	o, err := a.store.get(r.Context(), id)
	if errors.Is(err, errUnknownOrder) {
		return httpapi.Errorf(httpapi.ENotFound, "unknown_order", "order %s not found", id)
	}
	if err != nil {
		return dbError(err)
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("loudly.order_id", id))
	httpapi.WriteJSON(w, http.StatusOK, o)
	return nil
}

// batchGet answers the status of many orders in one read: what a client that placed
// thousands of orders (the load generator's verification) asks instead of one GET each.
func (a *api) batchGet(w http.ResponseWriter, r *http.Request) error {
	body, err := readJSONBody(w, r)
	if err != nil {
		return err
	}
	ids, err := DecodeBatchGet(body)
	if err != nil {
		return err
	}
	found, err := a.store.statuses(r.Context(), ids)
	if err != nil {
		return dbError(err)
	}
	resp := BatchGetResponse{Orders: found, NotFound: []string{}}
	have := make(map[string]bool, len(found))
	for _, o := range found {
		have[o.ID] = true
	}
	for _, id := range ids {
		if !have[id] {
			resp.NotFound = append(resp.NotFound, id)
		}
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.Int("loudly.batch.ids", len(ids)),
		attribute.Int("loudly.batch.not_found", len(resp.NotFound)))
	httpapi.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// jsonContent refuses a request whose body is not declared as JSON.
func jsonContent(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return httpapi.Errorf(httpapi.EUnsupported, "unsupported_media_type", "Content-Type must be application/json, got %q", r.Header.Get("Content-Type"))
	}
	return nil
}

// readBody reads a request body of at most MaxRequestBytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, httpapi.Errorf(httpapi.ETooLarge, "body_too_large", "request body is larger than %d bytes", MaxRequestBytes)
		}
		return nil, httpapi.Errorf(httpapi.EInvalid, "unreadable_body", "reading the body: %v", err)
	}
	return body, nil
}

// readJSONBody is jsonContent and readBody.
func readJSONBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := jsonContent(r); err != nil {
		return nil, err
	}
	return readBody(w, r)
}

func traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// dbError is the answer to a failed database call: 503 with Retry-After while the
// database cannot do the work just now (a failover, an unreachable server, a wait past
// DB_TIMEOUT), 500 otherwise.
func dbError(err error) error {
	if postgres.Unavailable(err) {
		return httpapi.Unavailable("db_unavailable", err)
	}
	return httpapi.Internal("db_error", err)
}

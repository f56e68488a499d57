package inventory

import (
	"net/http"

	"github.com/google/uuid"

	"loudly/pkg/httpapi"
	"loudly/pkg/postgres"
	"loudly/pkg/telemetry"
)

// api serves stock and decisions, so other tools ask this service instead of reading
// its tables.
type api struct {
	store *store
	tel   *telemetry.Telemetry
}

// routes mounts the endpoints through httpapi.Handle, which writes and records every error
// answer as a decision of stage http.
func (a *api) routes(mux *http.ServeMux) {
	mux.Handle("GET /v1/stock", httpapi.Handle(a.tel, a.listStock))
	mux.Handle("GET /v1/reservations", httpapi.Handle(a.tel, a.listReservations))
}

func (a *api) listStock(w http.ResponseWriter, r *http.Request) error {
	s, err := a.store.stock(r.Context())
	if err != nil {
		return dbError(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"stock": s})
	return nil
}

// listReservations answers GET /v1/reservations?order_id=ID: every decision taken for
// the order's events.
func (a *api) listReservations(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("order_id")
	if _, err := uuid.Parse(id); err != nil {
		return httpapi.Errorf(httpapi.EInvalid, "bad_order_id", "order_id %q is not a UUID", id)
	}
	res, err := a.store.reservations(r.Context(), id)
	if err != nil {
		return dbError(err)
	}
	if res == nil {
		res = []Reservation{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"order_id": id, "reservations": res})
	return nil
}

// dbError is the answer to a failed database call: 503 with Retry-After while the
// database cannot do the work just now, 500 otherwise.
func dbError(err error) error {
	if postgres.Unavailable(err) {
		return httpapi.Unavailable("db_unavailable", err)
	}
	return httpapi.Internal("db_error", err)
}

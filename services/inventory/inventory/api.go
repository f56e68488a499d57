package inventory

import (
	"net/http"

	"github.com/google/uuid"

	"loudly/pkg/httpapi"
	"loudly/pkg/telemetry"
)

// api serves stock and decisions, so other tools ask this service instead of reading
// its tables.
type api struct {
	store *store
	tel   *telemetry.Telemetry
}

func (a *api) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/stock", a.listStock)
	mux.HandleFunc("GET /v1/reservations", a.listReservations)
}

func (a *api) listStock(w http.ResponseWriter, r *http.Request) {
	s, err := a.store.stock(r.Context())
	if err != nil {
		httpapi.WriteError(w, r, a.tel.Logger, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"stock": s})
}

// listReservations answers GET /v1/reservations?order_id=ID: every decision taken for
// the order's events.
func (a *api) listReservations(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("order_id")
	if _, err := uuid.Parse(id); err != nil {
		httpapi.WriteError(w, r, a.tel.Logger, httpapi.Errorf(httpapi.EInvalid, "bad_order_id", "order_id %q is not a UUID", id))
		return
	}
	res, err := a.store.reservations(r.Context(), id)
	if err != nil {
		httpapi.WriteError(w, r, a.tel.Logger, err)
		return
	}
	if res == nil {
		res = []Reservation{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"order_id": id, "reservations": res})
}

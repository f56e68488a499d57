package postgres

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable reports whether err says the database could not do the work just now,
// rather than that the work is wrong: the server could not be reached or went away
// (connection exceptions, SQLSTATE class 08, a network error), it is shutting down or
// starting (57P01, 57P02, 57P03), it refused a write because it is read-only — a
// primary demoted by a failover (25006) — or a wait bounded by DB_TIMEOUT ran out. The
// same request, retried, can succeed once a new primary answers: an API answers 503
// with Retry-After, a consumer decides retry.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "25006" ||
			pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded)
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestUnavailable(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"no error", nil, false},
		{"read-only server (a demoted primary)", &pgconn.PgError{Code: "25006"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"admin shutdown", fmt.Errorf("settle: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"cannot connect now (starting up)", &pgconn.PgError{Code: "57P03"}, true},
		{"a wait past DB_TIMEOUT", fmt.Errorf("commit: %w", context.DeadlineExceeded), true},
		{"network error", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"check violation", &pgconn.PgError{Code: "23514"}, false},
		{"serialization failure (the caller's retry, not the server's state)", &pgconn.PgError{Code: "40001"}, false},
		{"a bug", errors.New("scan: wrong number of columns"), false},
	} {
		if got := Unavailable(c.err); got != c.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

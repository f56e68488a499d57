package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/no-content":
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		default:
			http.Error(w, "not ready yet", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	// A port nothing listens on: reserve one, then close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/"
	ln.Close()

	tests := []struct {
		name     string
		args     []string
		want     int
		inStderr string
	}{
		{"200 is healthy", []string{srv.URL + "/ok"}, 0, ""},
		{"any 2xx is healthy", []string{srv.URL + "/no-content"}, 0, ""},
		{"a redirect to a 2xx is followed", []string{srv.URL + "/redirect"}, 0, ""},
		{"503 is unhealthy and says why", []string{srv.URL + "/readyz"}, 1, "not ready yet"},
		{"nothing listening is unhealthy", []string{closed}, 1, "httpcheck:"},
		{"no argument is a usage error", nil, 2, "usage"},
		{"two arguments are a usage error", []string{srv.URL, srv.URL}, 2, "usage"},
		{"not an http URL is a usage error", []string{"127.0.0.1:13133"}, 2, "want an http://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			if got := check(tt.args, &stderr); got != tt.want {
				t.Fatalf("exit code %d, want %d (stderr %q)", got, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.inStderr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.inStderr)
			}
		})
	}
}

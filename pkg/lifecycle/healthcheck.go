package lifecycle

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Healthcheck asks http://<addr>/readyz of a service on this host and returns 0 when it
// answers 200. addr is the service's HTTP_ADDR (or def when empty); a wildcard host is
// reached on the loopback interface.
func Healthcheck(addr, def string, stderr io.Writer) int {
	if addr == "" {
		addr = def
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: HTTP_ADDR %q: %v\n", addr, err)
		return ExitConfig
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 3 * time.Second}
	res, err := client.Get("http://" + net.JoinHostPort(host, port) + "/readyz")
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return ExitFailure
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
		fmt.Fprintf(stderr, "healthcheck: %s: %s\n", res.Status, body)
		return ExitFailure
	}
	return 0
}

// Command httpcheck is the container healthcheck of the demo's images that ship no shell,
// curl or wget and have no health command of their own (the OpenTelemetry Collector and
// the NATS Prometheus exporter). The root Dockerfile copies it into those images:
//
//	healthcheck: ["CMD", "/httpcheck", "http://127.0.0.1:13133/"]
//
// It GETs the URL and exits 0 on a 2xx answer, 1 on anything else (saying what it got on
// stderr, which `docker inspect` shows), and 2 when it is called wrongly.
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

func main() {
	os.Exit(check(os.Args[1:], os.Stderr))
}

// timeout is shorter than any healthcheck timeout in the compose file, so a hung server is
// reported by this program rather than killed by Docker without a word.
const timeout = 3 * time.Second

func check(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: httpcheck http://HOST:PORT/PATH")
		return 2
	}
	u, err := url.Parse(args[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fmt.Fprintf(stderr, "httpcheck: %q: want an http:// or https:// URL with a host\n", args[0])
		return 2
	}
	client := &http.Client{Timeout: timeout}
	res, err := client.Get(u.String())
	if err != nil {
		fmt.Fprintf(stderr, "httpcheck: %v\n", err)
		return 1
	}
	defer res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		fmt.Fprintf(stderr, "httpcheck: %s: %s: %s\n", u, res.Status, body)
		return 1
	}
	return 0
}

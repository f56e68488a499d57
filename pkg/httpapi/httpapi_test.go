package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"loudly/pkg/health"
	"loudly/pkg/telemetry"
)

// startServer serves an API whose one route reads the body the way the order service's
// handler does, through its own http.MaxBytesReader, answering an *http.MaxBytesError
// with the too_large error.
func startServer(t *testing.T) (addr string, handled *atomic.Int64) {
	t.Helper()
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{ServiceName: "httpapi-test", LogWriter: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	handled = new(atomic.Int64)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/things", func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, r, tel.Logger, Errorf(ETooLarge, "body_too_large", "request body is larger than %d bytes", tooBig.Limit))
			return
		}
		if err != nil {
			WriteError(w, r, tel.Logger, Errorf(EInvalid, "unreadable_body", "%v", err))
			return
		}
		WriteJSON(w, http.StatusOK, map[string]int{"bytes": len(b)})
	})
	srv, err := Listen("127.0.0.1:0", mux, &health.Checks{}, tel, "httpapi-test")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		_ = tel.Shutdown(ctx)
	})
	return srv.Addr(), handled
}

// chunked encodes body as HTTP/1.1 chunks of 32 KiB.
func chunked(body []byte) []byte {
	var b strings.Builder
	for len(body) > 0 {
		n := min(len(body), 32<<10)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return []byte(b.String())
}

// readTooLarge reads one response and checks it is the 413 with its JSON error.
func readTooLarge(t *testing.T, br *bufio.Reader) {
	t.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	var body struct{ Error Error }
	if res.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(raw, &body) != nil ||
		body.Error.Code != ETooLarge || body.Error.Reason != "body_too_large" {
		t.Fatalf("answer %s %s, want 413 with the too_large JSON error", res.Status, raw)
	}
	if res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", res.Header.Get("Content-Type"))
	}
}

func TestOversizedBodies_GetAReadable413(t *testing.T) {
	oversized := []byte(`{"x":"` + strings.Repeat("x", 3<<20) + `"}`) // the 3 MB order

	// curl sends "Expect: 100-continue" for a large body and waits for the server's word:
	// the 413 must come from the headers, before any 100 Continue, and the body is never
	// sent.
	t.Run("Content-Length over the limit with Expect: 100-continue", func(t *testing.T) {
		addr, handled := startServer(t)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/things HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(oversized))
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(conn)
		status, err := br.Peek(12)
		if err != nil {
			t.Fatalf("no answer to the headers: %v", err)
		}
		if string(status) != "HTTP/1.1 413" {
			t.Fatalf("first answer %q, want HTTP/1.1 413 (no 100 Continue for a body that will be refused)", status)
		}
		readTooLarge(t, br)
		if n := handled.Load(); n != 0 {
			t.Errorf("the handler ran %d times for a body refused from its headers", n)
		}
	})

	// A client that sends its whole body before reading (what curl does once it has a 100
	// Continue, and what a client without Expect does) must still read the 413 instead
	// of a connection reset.
	for _, c := range []struct {
		name   string
		header string
		body   []byte
	}{
		{"chunked body over the limit", "Transfer-Encoding: chunked\r\n", chunked(oversized)},
		{"chunked body over the limit with Expect: 100-continue", "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n", chunked(oversized)},
		{"Content-Length over the limit sent without waiting", fmt.Sprintf("Content-Length: %d\r\n", len(oversized)), oversized},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, _ := startServer(t)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(conn)
			fmt.Fprintf(conn, "POST /v1/things HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n%s\r\n", c.header)
			if strings.Contains(c.header, "Expect") {
				res, err := http.ReadResponse(br, nil)
				if err != nil || res.StatusCode != http.StatusContinue {
					t.Fatalf("a body of unknown length is invited: got %v %v, want 100 Continue", res, err)
				}
			}
			// Paced like a real network rather than loopback (about a second for the
			// 3 MB), so the body is still arriving when the server has answered.
			for rest := c.body; len(rest) > 0; {
				n := min(len(rest), 64<<10)
				if _, err := conn.Write(rest[:n]); err != nil {
					t.Fatalf("sending the body, %d bytes left: %v (the server stopped reading and reset the connection)", len(rest), err)
				}
				rest = rest[n:]
				time.Sleep(20 * time.Millisecond)
			}
			readTooLarge(t, br)
		})
	}

	t.Run("a body within the limit reaches the handler", func(t *testing.T) {
		addr, handled := startServer(t)
		for _, te := range []string{"", "chunked"} {
			req, _ := http.NewRequest("POST", "http://"+addr+"/v1/things", strings.NewReader(strings.Repeat("x", MaxBodyBytes)))
			if te == "chunked" {
				req.ContentLength = -1 // the client sends it chunked
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || string(raw) != fmt.Sprintf("{\"bytes\":%d}\n", MaxBodyBytes) {
				t.Errorf("%s body of exactly the limit: %s %s", te, res.Status, raw)
			}
		}
		if handled.Load() != 2 {
			t.Errorf("handler ran %d times, want 2", handled.Load())
		}
	})
}

package profiling

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		wantErr string // "" = allowed
	}{
		{addr: ""}, // off
		{addr: "127.0.0.1:6060"},
		{addr: "127.0.0.2:0"},
		{addr: "[::1]:6060"},
		{addr: "localhost:6060"},
		{addr: ":6060", wantErr: "every interface"},
		{addr: "0.0.0.0:6060", wantErr: "every interface"},
		{addr: "[::]:6060", wantErr: "every interface"},
		{addr: "10.1.2.3:6060", wantErr: "non-loopback"},
		{addr: "example.com:6060", wantErr: "non-loopback"},
		{addr: "127.0.0.1", wantErr: "want a loopback host:port"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := CheckAddr(tc.addr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("CheckAddr(%q) = %v, want nil", tc.addr, err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("CheckAddr(%q) = nil, want an error containing %q", tc.addr, tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("CheckAddr(%q) = %q, want it to contain %q", tc.addr, err, tc.wantErr)
			case err != nil && !strings.Contains(err.Error(), EnvAddr):
				t.Fatalf("CheckAddr(%q) = %q, want it to name %s", tc.addr, err, EnvAddr)
			}
		})
	}
}

func TestListen_RefusesNonLoopback(t *testing.T) {
	s, err := Listen(":0")
	if err == nil {
		s.Close()
		t.Fatal("Listen(\":0\") served on every interface, want an error")
	}
}

func TestListen_OffIsNil(t *testing.T) {
	s, err := Listen("")
	if err != nil || s != nil {
		t.Fatalf("Listen(\"\") = %v, %v; want nil, nil (off)", s, err)
	}
	// Off is wired like on: every method is a no-op.
	if s.Addr() != "" {
		t.Errorf("Addr() = %q, want empty", s.Addr())
	}
	if err := s.Run(t.Context()); err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestServer_ServesProfiles takes a real one-second CPU profile, as an engineer would.
func TestServer_ServesProfiles(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	base := "http://" + s.Addr() + "/debug/pprof/"
	index := get(t, base)
	if !bytes.Contains(index, []byte("goroutine")) {
		t.Errorf("index does not list the goroutine profile:\n%s", index)
	}
	// A CPU profile is gzipped protobuf.
	if prof := get(t, base+"profile?seconds=1"); !bytes.HasPrefix(prof, []byte{0x1f, 0x8b}) {
		t.Errorf("CPU profile is not gzip data (%d bytes: %q…)", len(prof), prof[:min(len(prof), 40)])
	}
	if heap := get(t, base+"heap"); !bytes.HasPrefix(heap, []byte{0x1f, 0x8b}) {
		t.Errorf("heap profile is not gzip data (%d bytes)", len(heap))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if _, err := http.Get(base); err == nil {
		t.Error("still serving after Run returned")
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after Run returned: %v", err)
	}
}

func TestServer_CloseBeforeRun(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Run(t.Context()); err != nil {
		t.Errorf("Run after Close = %v, want nil", err)
	}
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Error("the listener still answers after Close")
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return body
}

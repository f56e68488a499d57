package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a writer tests can read while the line writer's goroutine writes it.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	gate   chan struct{} // when set, each Write waits for a value from it
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	if b.gate != nil {
		<-b.gate
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLineWriterKeepsEveryLineInOrderOfEachWriter(t *testing.T) {
	out := &lockedBuffer{}
	l := newLineWriter(out)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			buf := make([]byte, 0, 64)
			for i := range lines {
				buf = fmt.Appendf(buf[:0], "w%d %d\n", w, i)
				if n, err := l.Write(buf); n != len(buf) || err != nil {
					t.Errorf("Write = %d, %v; want %d, nil", n, err, len(buf))
				}
				// The caller reuses its buffer at once, as slog's handler does.
				copy(buf, "XXXX")
			}
		})
	}
	wg.Wait()
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines out, want %d", len(got), writers*lines)
	}
	next := make([]int, writers)
	for _, line := range got {
		var w, i int
		if _, err := fmt.Sscanf(line, "w%d %d", &w, &i); err != nil {
			t.Fatalf("line %q is not one that was written: %v", line, err)
		}
		if i != next[w] {
			t.Fatalf("writer %d: line %d came out where %d was due", w, i, next[w])
		}
		next[w]++
	}
}

func TestLineWriterGathersLinesIntoFewerWrites(t *testing.T) {
	gate := make(chan struct{})
	out := &lockedBuffer{gate: gate}
	l := newLineWriter(out)
	// The goroutine is held in its first write; the lines after it gather meanwhile.
	if _, err := l.Write([]byte("first\n")); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := l.Write(fmt.Appendf(nil, "line %d\n", i)); err != nil {
			t.Fatal(err)
		}
	}
	close(gate)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 101 {
		t.Fatalf("%d lines out, want 101", n)
	}
	// At most: the first line alone, then everything else, then (racing) nothing more.
	if out.writes > 3 {
		t.Errorf("%d write calls for 101 lines queued behind one: lines were not gathered", out.writes)
	}
}

func TestLineWriterWaitsWhenFullInsteadOfDropping(t *testing.T) {
	gate := make(chan struct{})
	out := &lockedBuffer{gate: gate}
	l := newLineWriter(out)
	l.max = 10 // tiny, so the second line finds the buffer full
	if _, err := l.Write([]byte("held in the writer\n")); err != nil {
		t.Fatal(err)
	}
	// Wait until the goroutine has taken that line and sits in the gated Write.
	for {
		l.mu.Lock()
		empty := len(l.buf) == 0
		l.mu.Unlock()
		if empty {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := l.Write([]byte("fills the buffer\n")); err != nil {
		t.Fatal(err)
	}
	third := make(chan struct{})
	go func() {
		defer close(third)
		_, _ = l.Write([]byte("waits for room\n"))
	}()
	select {
	case <-third:
		t.Fatal("a Write went on with the buffer full and the writer stuck")
	case <-time.After(50 * time.Millisecond):
	}
	close(gate) // the writer moves: room again
	<-third
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := "held in the writer\nfills the buffer\nwaits for room\n"
	if got := out.String(); got != want {
		t.Fatalf("out = %q, want %q", got, want)
	}
}

func TestLineWriterWritesInPlaceAfterClose(t *testing.T) {
	out := &lockedBuffer{}
	l := newLineWriter(out)
	if _, err := l.Write([]byte("before\n")); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil { // twice is fine
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	// No waiting: a line written after Close is out when Write returns.
	if got, want := out.String(), "before\nafter\n"; got != want {
		t.Fatalf("out = %q, want %q", got, want)
	}
}

func TestLineWriterCloseGivesUpWithItsContext(t *testing.T) {
	gate := make(chan struct{})
	out := &lockedBuffer{gate: gate}
	l := newLineWriter(out)
	if _, err := l.Write([]byte("stuck\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := l.Close(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Close with the writer stuck = %v, want %v", err, context.DeadlineExceeded)
	}
	close(gate)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "stuck\n" {
		t.Fatalf("out = %q", got)
	}
}

func TestSetupWithAsyncLogWritesFlushesOnShutdown(t *testing.T) {
	out := &lockedBuffer{}
	tel, err := Setup(context.Background(), Config{ServiceName: "svc", LogWriter: out, AsyncLogWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		tel.Logger.Info("hello", "i", i)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `"msg":"hello"`); n != 50 {
		t.Fatalf("%d of 50 lines out after Shutdown", n)
	}
}

// A duration in a log line reads as one ("1m30s"), not as slog's integer of nanoseconds:
// the reconciler's oldest_age, the relay's retry_in.
func TestLogger_WritesDurationsAsText(t *testing.T) {
	var out bytes.Buffer
	tel, err := Setup(context.Background(), Config{ServiceName: "svc", LogWriter: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	tel.Logger.Info("reconciled", slog.Duration("oldest_age", 90*time.Second), "retry_in", 1500*time.Millisecond)
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if line["oldest_age"] != "1m30s" || line["retry_in"] != "1.5s" {
		t.Errorf("durations logged as %v and %v, want 1m30s and 1.5s: %s", line["oldest_age"], line["retry_in"], out.String())
	}
}

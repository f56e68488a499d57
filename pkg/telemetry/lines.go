package telemetry

import (
	"context"
	"io"
	"sync"
)

// lineWriter writes log lines to w from a goroutine of its own, so a logger never waits
// on w. slog's handler holds one mutex through each Write; with stdout written in place,
// every goroutine that logs queued behind one write system call (and behind a pipe
// reader that fell behind). Here Write only appends the line to a buffer; the goroutine
// writes whatever has gathered in one call, in the order the lines came.
//
// Nothing is dropped: once maxBuffered bytes wait, Write waits for the goroutine, as a
// Write to w itself would. A line waits for at most the write before it, so a process
// killed outright loses what one write call takes, no more; Close writes the rest.
type lineWriter struct {
	w    io.Writer
	max  int
	wake chan struct{} // one pending wake-up for the goroutine
	done chan struct{} // closed when the goroutine has written everything and left

	mu     sync.Mutex
	room   *sync.Cond // signalled when the goroutine takes the buffer
	buf    []byte
	closed bool
}

// maxBuffered is how many bytes of lines wait at most (about 500 decision lines).
const maxBuffered = 256 << 10

func newLineWriter(w io.Writer) *lineWriter {
	l := &lineWriter{w: w, max: maxBuffered, wake: make(chan struct{}, 1), done: make(chan struct{})}
	l.room = sync.NewCond(&l.mu)
	go l.run()
	return l
}

// Write queues p (a copy: the caller may reuse it). After Close it writes p in place,
// once the queued lines are out.
func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	for !l.closed && len(l.buf) >= l.max {
		l.room.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		<-l.done // after the queued lines
		return l.w.Write(p)
	}
	l.buf = append(l.buf, p...)
	select { // under mu: Close closes wake under it too
	case l.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
	l.mu.Unlock()
	return len(p), nil
}

func (l *lineWriter) run() {
	defer close(l.done)
	var spare []byte
	for {
		_, open := <-l.wake
		l.mu.Lock()
		batch := l.buf
		l.buf = spare[:0]
		l.room.Broadcast()
		l.mu.Unlock()
		if len(batch) > 0 {
			_, _ = l.w.Write(batch) // as slog does: a log line that cannot be written is lost
		}
		spare = batch
		if !open {
			return
		}
	}
}

// Close writes every queued line and stops the goroutine; later lines are written in place.
func (l *lineWriter) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		l.room.Broadcast()
		close(l.wake)
	}
	l.mu.Unlock()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

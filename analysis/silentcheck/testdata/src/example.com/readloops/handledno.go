package readloops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
)

// handler does a record's work and answers whether its offset may be committed.
type handler struct{ seen map[string]bool }

// Handle explains every "no" it gives: each false comes after a log line.
func (h *handler) Handle(ctx context.Context, m Message) bool { // want Handle:"explains its empty answers or failures"
	if len(m.Value) == 0 {
		log.Printf("record %d: empty value, left uncommitted", m.Offset)
		return false
	}
	if err := apply(event{Type: string(m.Key)}); err != nil {
		log.Printf("record %d: %v", m.Offset, err)
		return false
	}
	return true
}

// Filter gives a "no" without a trace: the record of another key is left silently.
func (h *handler) Filter(ctx context.Context, m Message) bool {
	if !h.seen[string(m.Key)] {
		return false
	}
	return apply(event{Type: string(m.Key)}) == nil
}

// markDone records the record as done in the team's own store (which the rules do not
// know to settle anything): work on the record.
func markDone(ctx context.Context, m Message) error { return nil }

// mark commits m, logging a failure.
func mark(ctx context.Context, m Message) {
	if err := markDone(ctx, m); err != nil {
		log.Printf("commit %d: %v", m.Offset, err)
	}
}

// The loop marks done only what Handle accepted; Handle said why it refused the rest.
func handled(ctx context.Context, r *Reader, h *handler) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		if commit := h.Handle(ctx, m); commit {
			mark(ctx, m)
		}
	}
}

// The same with the call as the condition.
func handledInline(ctx context.Context, r *Reader, h *handler) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		if h.Handle(ctx, m) {
			mark(ctx, m)
		}
	}
}

// Filter's "no" is silent, so the loop's implicit else is too.
func filtered(ctx context.Context, r *Reader, h *handler) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		if ok := h.Filter(ctx, m); ok { // want `silent path: when "ok" is false the message is dropped without a trace`
			mark(ctx, m)
		}
	}
}

// readUntilClosed returns when the reader is closed: inside the fetch's own error check,
// no record was taken.
func readUntilClosed(ctx context.Context, r *Reader) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return
			}
			log.Printf("read: %v", err)
			continue
		}
		// err is given the record's own error below: the check above still asks only
		// about the read.
		err = markDone(ctx, m)
		if err != nil {
			log.Printf("record %d: %v", m.Offset, err)
		}
	}
}

// decodeOrSkip applies what decodes; a record that does not is committed with the next
// read, and nothing says so.
func decodeOrSkip(ctx context.Context, r *Reader) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		var ev event
		if err := json.Unmarshal(m.Value, &ev); err == nil { // want `silent path: when "err == nil" is false \(the error's path, the if has no else\) the message is dropped without a trace`
			store(ev)
		}
	}
}

// decodeOrLog says why.
func decodeOrLog(ctx context.Context, r *Reader) {
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return
		}
		var ev event
		if err := json.Unmarshal(m.Value, &ev); err == nil {
			store(ev)
		} else {
			log.Printf("record %d: %v", m.Offset, err)
		}
	}
}

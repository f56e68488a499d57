package load

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/deadletter"
	"loudly/pkg/envelope"
	"loudly/services/events"
)

// Poison events are published straight to orders.placed, past the API's validation, the
// way a broken producer would. Each kind must end as a dead letter with this reason.
var poisonKinds = []string{envelope.ReasonMalformed, envelope.ReasonUnknownVersion, envelope.ReasonMissingField}

// poison is one poison event the run published.
type poison struct {
	msgID string // Nats-Msg-Id, "poison-<uuid>"; the dead letter keeps it
	kind  string // the dead-letter reason it should get
}

// poisonPayload builds an event that can never be processed, of the given kind.
func poisonPayload(kind string, now time.Time) []byte {
	data := json.RawMessage(`{"customer_id":"load-poison","lines":[{"sku":"BOOK-001","quantity":1}]}`)
	switch kind {
	case envelope.ReasonUnknownVersion:
		// Well formed in every other way, so only the version can be the reason.
		b, _ := json.Marshal(envelope.Envelope{ID: uuid.NewString(), Type: events.TypeOrderPlaced, Version: 99,
			OccurredAt: now.UTC(), Key: uuid.NewString(), Data: data})
		return b
	case envelope.ReasonMissingField:
		b, _ := json.Marshal(struct {
			ID         string          `json:"id"`
			Type       string          `json:"type"`
			Version    int             `json:"version"`
			OccurredAt time.Time       `json:"occurred_at"`
			Data       json.RawMessage `json:"data"`
		}{uuid.NewString(), events.TypeOrderPlaced, envelope.CurrentVersion, now.UTC(), data}) // no key (the order id)
		return b
	default: // malformed JSON: an envelope cut off mid-way
		return fmt.Appendf(nil, `{"id":%q,"type":%q,"version":1,"key":`, uuid.NewString(), events.TypeOrderPlaced)
	}
}

// publishPoison publishes one poison event of the given kind and waits for the broker's
// PubAck. A failed attempt is repeated under the same Nats-Msg-Id, so the broker stores
// the event at most once even if an earlier attempt did reach it.
func publishPoison(ctx context.Context, js jetstream.JetStream, kind string) (poison, error) {
	p := poison{msgID: "poison-" + uuid.NewString(), kind: kind}
	msg := nats.NewMsg(events.SubjectOrderPlaced)
	msg.Data = poisonPayload(kind, time.Now())
	var err error
	for attempt := 0; attempt <= maxRetries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return p, ctx.Err()
			case <-time.After(100 * time.Millisecond << (attempt - 1)):
			}
		}
		// Like an order request, a publish under way when the run is interrupted is
		// waited for, so that the run knows whether the event is in the stream.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err = js.PublishMsg(actx, msg, jetstream.WithMsgID(p.msgID))
		cancel()
		if err == nil {
			return p, nil
		}
	}
	return p, fmt.Errorf("publish %s to %s: %w", p.msgID, events.SubjectOrderPlaced, err)
}

// findDeadLetters reads the dead-letter stream once and returns, for each of ids found
// there, its letter. The letter carries the original Nats-Msg-Id in its headers.
func findDeadLetters(ctx context.Context, js jetstream.JetStream, ids map[string]poison) (map[string]deadletter.Letter, error) {
	letters, err := deadletter.List(ctx, js, 0)
	found := make(map[string]deadletter.Letter)
	for _, l := range letters {
		id := l.Headers.Get(jetstream.MsgIDHeader)
		if _, ok := ids[id]; ok {
			found[id] = l
		}
	}
	return found, err
}

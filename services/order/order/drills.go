package order

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"loudly/pkg/envelope"
	"loudly/pkg/faults"
	"loudly/pkg/outbox"
	"loudly/pkg/telemetry"
	"loudly/services/drill"
	"loudly/services/events"
)

// The order service's drill faults act from outside its business code: outbox-stall (the
// drills' publisher decorator) and schema-drift decorate the outbox relay's publisher, and
// poison-flood is a worker of its own that publishes like a broken producer. Service.New
// attaches them in one place.

// driftPublisher decorates the relay's publisher with schema-drift: a fraction of
// order.placed events go out with an envelope version no consumer knows, as a producer
// deployed ahead of its consumers would. The outbox rows themselves are untouched.
func driftPublisher(next outbox.Publisher, d *drill.Drills) outbox.Publisher {
	return outbox.PublisherFunc(func(ctx context.Context, msg *nats.Msg, eventID string) (jetstream.PubAckFuture, error) {
		if msg.Subject == events.SubjectOrderPlaced && d.Hit(drill.SchemaDrift) {
			drifted, err := driftVersion(msg.Data)
			if err != nil {
				return nil, err
			}
			trace.SpanFromContext(ctx).SetAttributes(faults.Attr(drill.SchemaDrift))
			msg.Data = drifted
		}
		return next.Publish(ctx, msg, eventID)
	})
}

// driftVersion rewrites an event's envelope version to one past the current.
func driftVersion(data []byte) ([]byte, error) {
	var env envelope.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("schema-drift: %w", err)
	}
	env.Version = envelope.CurrentVersion + 1
	return json.Marshal(env)
}

// poisoner is the poison-flood drill: while the fault is active it publishes malformed
// events straight to orders.placed at the fault's rate, like a broken producer would.
type poisoner struct {
	js     jetstream.JetStream
	drills *drill.Drills
	tel    *telemetry.Telemetry
}

func (p *poisoner) Run(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	carry := 0.0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		f, ok := p.drills.Get(drill.PoisonFlood)
		if !ok {
			carry = 0
			continue
		}
		carry += f.Intensity / 10
		for ; carry >= 1; carry-- {
			p.publish(ctx)
		}
	}
}

func (p *poisoner) publish(ctx context.Context) {
	ctx, span := p.tel.Tracer().Start(ctx, "poison-flood publish")
	defer span.End()
	span.SetAttributes(faults.Attr(drill.PoisonFlood))
	id := "poison-flood-" + uuid.NewString()
	msg := nats.NewMsg(events.SubjectOrderPlaced)
	msg.Data = fmt.Appendf(nil, `{"id":"%s","type":"order.placed","version":1,"data":`, id) // truncated JSON
	p.tel.Inject(ctx, msg.Header)
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		span.RecordError(err)
	}
}

package order

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/events"
	"loudly/pkg/faults"
	"loudly/pkg/telemetry"
)

// poisoner is the poison-flood drill: while the fault is active it publishes malformed
// events straight to orders.placed at the fault's rate, like a broken producer would.
type poisoner struct {
	js     jetstream.JetStream
	faults *faults.Watcher
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
		f, ok := p.faults.Get(faults.PoisonFlood)
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
	span.SetAttributes(faults.Attr(faults.PoisonFlood))
	id := "poison-flood-" + uuid.NewString()
	msg := nats.NewMsg(events.SubjectOrderPlaced)
	msg.Data = fmt.Appendf(nil, `{"id":"%s","type":"order.placed","version":1,"data":`, id) // truncated JSON
	p.tel.Inject(ctx, msg.Header)
	if _, err := p.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		span.RecordError(err)
	}
}

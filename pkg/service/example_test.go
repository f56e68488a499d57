package service_test

import (
	"context"
	"embed"

	"github.com/nats-io/nats.go/jetstream"

	"loudly/pkg/consumer"
	"loudly/pkg/envelope"
	"loudly/pkg/service"
	"loudly/pkg/telemetry"
)

var migrations embed.FS // //go:embed migrations/*.sql, in a service's package

// Refunded is the payload of the example's event type.
type Refunded struct{}

var refundedType = envelope.NewType("payments.refunded", func(envelope.Envelope, Refunded) error { return nil })

// A service's New on the base: Open connects to PostgreSQL (migrating the schema and
// creating its record of processed events) and NATS (ensuring the streams), and opens the
// HTTP listener with /healthz, /readyz and /metrics; the service adds its outbox, its
// consumers and its routes. main runs it with lifecycle.Main, which calls Run and Close.
func ExampleOpen() {
	ctx := context.Background()
	var cfg service.Config       // service.ConfigFromEnv
	var tel *telemetry.Telemetry // telemetry.Setup, done by lifecycle.Main
	decide := func(ctx context.Context, items []consumer.Item[Refunded]) ([]consumer.Result, error) {
		out := make([]consumer.Result, len(items))
		for i := range items {
			out[i] = consumer.Applied("refunded") // one transaction for the batch, claims included
		}
		return out, nil
	}

	b, err := service.Open(ctx, service.Spec{Name: "ledger", Schema: "ledger", Migrations: migrations,
		Streams: []jetstream.StreamConfig{{Name: "PAYMENTS", Subjects: []string{"payments.>"}}}}, cfg, tel)
	if err != nil {
		return // the configuration or a dependency is wrong: the error says which
	}
	err = func() (err error) {
		defer b.CloseOnError(&err) // a service that fails to wire is never left half open
		if _, err = b.Outbox(ctx); err != nil {
			return err
		}
		_, err = b.ConsumeBatch(ctx, cfg.Consumer.For("PAYMENTS", "ledger", "payments.refunded"),
			consumer.HandleBatch(refundedType, decide))
		return err
	}()
	if err == nil {
		_ = b.Run(ctx) // until ctx ends; then a graceful shutdown
		b.Close()
	}
}

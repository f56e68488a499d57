package deadletter

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// RegisterDepthGauge exports the number of letters waiting in the stream, per consumer
// that gave them up (loudly_deadletter_messages{consumer}). One service exports it, so
// dashboards do not add up the same stream twice.
func RegisterDepthGauge(m metric.Meter, js jetstream.JetStream) error {
	g, err := m.Int64ObservableGauge("loudly.deadletter.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Dead letters waiting in the DEADLETTER stream, by the consumer that gave them up."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		s, err := js.Stream(ctx, Stream)
		if err != nil {
			return nil // broker unreachable: a gap, and /readyz says why
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(SubjectPrefix+">"))
		if err != nil {
			return nil
		}
		for subject, n := range info.State.Subjects {
			o.ObserveInt64(g, int64(n), metric.WithAttributes(attribute.String("consumer", strings.TrimPrefix(subject, SubjectPrefix))))
		}
		return nil
	}, g)
	return err
}

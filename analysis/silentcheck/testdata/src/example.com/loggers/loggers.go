// Package loggers records with the common logging libraries, each recognised from its
// types: an emitting call counts, a builder that emits nothing does not.
package loggers

import (
	"context"
	"errors"

	"example.com/consumer"
	"github.com/rs/zerolog"
	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
)

type handler struct {
	zap  *zap.Logger
	zero zerolog.Logger
	lr   *logrus.Logger
}

func apply(m *consumer.Message) error { return nil }

func (h *handler) handle(ctx context.Context, m *consumer.Message) error {
	err := apply(m)
	switch {
	case m.Attempt == 1:
		logrus.WithError(err).Error("dropped")
		return nil
	case m.Attempt == 2:
		h.lr.Warnf("dropped %s", m.Subject)
		return nil
	case m.Attempt == 3:
		h.zap.Warn("dropped", zap.Error(err))
		return nil
	case m.Attempt == 4:
		h.zap.Sugar().Infow("dropped", "subject", m.Subject)
		return nil
	case m.Attempt == 5:
		h.zero.Warn().Err(err).Msg("dropped")
		return nil
	case m.Attempt == 6:
		h.zero.Error().Str("subject", m.Subject).Send()
		return nil
	case m.Attempt == 7:
		_ = logrus.WithField("subject", m.Subject) // builds an entry, logs nothing
		return nil                                 // want `silent path: branch "case m.Attempt == 7" returns nil`
	case m.Attempt == 8:
		_ = h.zero.Warn().Err(err) // an event never sent
		return nil                 // want `silent path: branch "case m.Attempt == 8" returns nil`
	case m.Attempt == 9:
		panic(errors.New("unreachable attempt"))
	}
	return err
}

// A method called Error on something that is not a logger records nothing.
type report struct{}

func (report) Error(msg string) {}

func (h *handler) handleNamedLikeALogger(ctx context.Context, m *consumer.Message, r report) error {
	if m.Subject == "" {
		r.Error("no subject")
		return nil // want `silent path: branch "if m.Subject == \\"\\"" returns nil`
	}
	return apply(m)
}

// Package envelope is the shape every event travels in, and the strict decoder that turns
// bytes into an event or into the reason it can never be processed. It knows no business:
// an event's entity key is an opaque string the services give meaning to, and each event
// type registers its own payload and validation (Type, Registry), so a service adds events
// without editing this package.
package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"loudly/pkg/strictjson"
)

// CurrentVersion is the only envelope version this code understands. An event of any
// other version is invalid here: it goes to the dead letters, where it waits for a
// consumer that knows it, instead of being guessed at.
const CurrentVersion = 1

// Limits of every event.
const (
	MaxEventBytes = 64 << 10 // a whole event document
	MaxKeyLength  = 128      // the entity key, in bytes
)

// Envelope is the JSON document every event is. Key is the entity the event is about (an
// order id, a payment reference): optional, any printable string up to MaxKeyLength bytes,
// like a CloudEvents subject. It is what logs, spans and dead letters correlate on.
type Envelope struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Version    int             `json:"version"`
	OccurredAt time.Time       `json:"occurred_at"`
	Key        string          `json:"key,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// Invalid is why an event can never be processed. Reason is a short stable token used as a
// metric label; Detail is for people.
type Invalid struct {
	Reason string
	Detail string
}

func (e *Invalid) Error() string { return e.Reason + ": " + e.Detail }

// Invalidf builds an *Invalid; payload validators return it to name their reason.
func Invalidf(reason, format string, args ...any) *Invalid {
	return &Invalid{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Reasons an event is invalid. Validators may add their own; these are the ones every
// consumer can meet.
const (
	ReasonMalformed      = "malformed_json"
	ReasonUnknownVersion = "unknown_version"
	ReasonUnknownType    = "unknown_type"
	ReasonMissingField   = "missing_field"
	ReasonBadField       = "bad_field"
	ReasonTooLarge       = "too_large"
	// Documents that are not I-JSON (RFC 7493) are refused, never silently altered: a
	// member name twice in one object (which one would a consumer keep?), and bytes that
	// are not UTF-8 or escape a lone surrogate (which a decoder would turn into U+FFFD).
	ReasonDuplicateMember = strictjson.ReasonDuplicateMember
	ReasonInvalidUTF8     = strictjson.ReasonInvalidUTF8
)

// jsonReason names why a document could not be decoded: its I-JSON violation, or
// malformed_json for everything else.
func jsonReason(err error) string {
	switch {
	case errors.Is(err, strictjson.ErrDuplicateMember):
		return ReasonDuplicateMember
	case errors.Is(err, strictjson.ErrInvalidUTF8), errors.Is(err, strictjson.ErrNoncharacter):
		return ReasonInvalidUTF8
	}
	return ReasonMalformed
}

// Decode parses and checks one envelope: size, strict JSON, version, the required fields,
// a UUID id and a well-formed key. It does not look inside Data; a Type does (Type.Decode,
// Registry.Decode). Its error is always an *Invalid: an event that fails here fails
// forever, so the caller dead-letters it.
func Decode(data []byte) (Envelope, error) {
	var env Envelope
	if len(data) > MaxEventBytes {
		return env, Invalidf(ReasonTooLarge, "event is %d bytes, limit %d", len(data), MaxEventBytes)
	}
	if err := Unmarshal(data, &env); err != nil {
		return env, Invalidf(jsonReason(err), "envelope: %v", err)
	}
	if env.Version != CurrentVersion {
		if env.Version == 0 {
			return env, Invalidf(ReasonMissingField, "version is missing")
		}
		return env, Invalidf(ReasonUnknownVersion, "version %d, this consumer knows %d", env.Version, CurrentVersion)
	}
	switch {
	case env.ID == "":
		return env, Invalidf(ReasonMissingField, "id is missing")
	case env.Type == "":
		return env, Invalidf(ReasonMissingField, "type is missing")
	case env.OccurredAt.IsZero():
		return env, Invalidf(ReasonMissingField, "occurred_at is missing")
	case len(env.Data) == 0 || string(env.Data) == "null":
		return env, Invalidf(ReasonMissingField, "data is missing")
	}
	if _, err := uuid.Parse(env.ID); err != nil {
		return env, Invalidf(ReasonBadField, "id %q is not a UUID", env.ID)
	}
	if err := CheckKey(env.Key); err != nil {
		return env, err
	}
	return env, nil
}

// CheckKey reports whether key can be an entity key: at most MaxKeyLength bytes of
// printable UTF-8. Keys reach log lines and span attributes, so control characters are
// refused rather than escaped.
func CheckKey(key string) error {
	if len(key) > MaxKeyLength {
		return Invalidf(ReasonBadField, "key is %d bytes, limit %d", len(key), MaxKeyLength)
	}
	if !utf8.ValidString(key) {
		return Invalidf(ReasonBadField, "key is not valid UTF-8")
	}
	for _, r := range key {
		if !unicode.IsPrint(r) {
			return Invalidf(ReasonBadField, "key %q has a non-printable character", key)
		}
	}
	return nil
}

// New builds an event of type typ about key. The id is a fresh UUID, so the event id is
// also the JetStream message id that deduplicates it. It is a version 7 UUID (RFC 9562:
// time-ordered), because event ids are keys of the tables that record events (an
// outbox's event_id, a consumer's processed events, the reservations): a random key
// lands each insert on a random index page, and once an index outgrows PostgreSQL's
// shared buffers nearly every insert dirties a page the write-ahead log must copy whole
// after each checkpoint; time-ordered keys append to the index's last page.
func New(typ, key string, data any, now time.Time) (Envelope, []byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, nil, err
	}
	env := Envelope{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Version: CurrentVersion, OccurredAt: now.UTC(), Key: key, Data: raw}
	b, err := json.Marshal(env)
	return env, b, err
}

// Unmarshal decodes exactly one I-JSON value into v (pkg/strictjson), rejecting unknown
// fields, trailing data, duplicate member names and invalid UTF-8: a producer that drifts
// from the contract is caught at its first event, not after it has corrupted state.
func Unmarshal(data []byte, v any) error { return strictjson.Unmarshal(data, v) }

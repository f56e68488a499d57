-- +goose Up
-- The order service's transactional outbox; pkg/outbox documents the shape it relies on.
CREATE TABLE orders.outbox (
    id              bigserial PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    subject         text        NOT NULL,
    payload         bytea       NOT NULL,
    headers         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        int         NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz
);
CREATE INDEX outbox_due ON orders.outbox (next_attempt_at, id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent ON orders.outbox (sent_at) WHERE sent_at IS NOT NULL;

-- +goose Down
DROP TABLE orders.outbox;

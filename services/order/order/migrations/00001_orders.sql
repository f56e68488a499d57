-- +goose Up
CREATE TABLE orders.orders (
    id          uuid PRIMARY KEY,
    customer_id text        NOT NULL,
    lines       jsonb       NOT NULL,
    status      text        NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'failed')),
    reason      text,
    trace_id    text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    settled_at  timestamptz
);
-- The reconciler's question, "what is still pending and since when?", stays cheap.
CREATE INDEX orders_pending_created ON orders.orders (created_at) WHERE status = 'pending';

-- Every status an order had, for forensics ("loudly trace").
CREATE TABLE orders.order_history (
    id       bigserial PRIMARY KEY,
    order_id uuid        NOT NULL REFERENCES orders.orders (id),
    status   text        NOT NULL,
    reason   text,
    event_id uuid,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_history_order ON orders.order_history (order_id);

-- The first answer to each Idempotency-Key, replayed to a retrying client.
CREATE TABLE orders.idempotency_keys (
    key          text PRIMARY KEY,
    request_hash bytea       NOT NULL,
    order_id     uuid        NOT NULL,
    response     bytea       NOT NULL DEFAULT '', -- the exact first 202 body
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The settlement consumer's record of the result events it applied is
-- orders.processed_events, which pkg/idempotency creates and owns.

-- +goose Down
DROP TABLE orders.idempotency_keys;
DROP TABLE orders.order_history;
DROP TABLE orders.orders;

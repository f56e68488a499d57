-- +goose Up
CREATE TABLE inventory.stock (
    sku       text PRIMARY KEY,
    name      text NOT NULL,
    available int  NOT NULL CHECK (available >= 0),
    reserved  int  NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);

-- One row per order event decided: the idempotency record (written in the same
-- transaction as the stock change) and the answer to "what did inventory decide?".
CREATE TABLE inventory.reservations (
    event_id   uuid PRIMARY KEY,
    order_id   uuid        NOT NULL,
    outcome    text        NOT NULL CHECK (outcome IN ('reserved', 'rejected')),
    reason     text,
    lines      jsonb       NOT NULL,
    trace_id   text,
    decided_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_order ON inventory.reservations (order_id);

-- The demo catalog (README, "Demo catalog"). Plenty of everyday stock, one limited item
-- that runs out under load, and one that is never in stock.
INSERT INTO inventory.stock (sku, name, available) VALUES
    ('BOOK-001',    'The Phoenix Project',           1000000000),
    ('BOOK-002',    'Site Reliability Engineering',  1000000000),
    ('MUG-001',     'Loudly mug',                    1000000000),
    ('SHIRT-S',     'Loudly T-shirt, S',             1000000000),
    ('SHIRT-M',     'Loudly T-shirt, M',             1000000000),
    ('SHIRT-L',     'Loudly T-shirt, L',             1000000000),
    ('STICKER-001', 'Sticker pack',                  1000000000),
    ('PAGER-001',   'Retro pager',                   1000000000),
    ('LIMITED-001', 'Signed first edition',          100),
    ('SOLDOUT-001', 'Conference hoodie (sold out)',  0);

-- +goose Down
DROP TABLE inventory.reservations;
DROP TABLE inventory.stock;

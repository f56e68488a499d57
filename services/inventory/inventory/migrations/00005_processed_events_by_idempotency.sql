-- +goose Up
-- Until this migration inventory.reservations decided whether an order event had been seen.
-- pkg/idempotency's record (inventory.processed_events, created at start-up before these
-- migrations) decides it now; the events decided before are copied into it, so a late
-- redelivery of one of them is still a duplicate. reservations keeps the decisions.
INSERT INTO inventory.processed_events (event_id, key, processed_at)
SELECT event_id, order_id::text, decided_at FROM inventory.reservations
ON CONFLICT (event_id) DO NOTHING;

-- +goose Down
SELECT 1;

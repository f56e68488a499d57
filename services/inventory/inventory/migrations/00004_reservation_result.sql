-- +goose Up
-- The result event each decision produced, so "what happened to this order" can follow it.
ALTER TABLE inventory.reservations ADD COLUMN result_event_id uuid;

-- +goose Down
ALTER TABLE inventory.reservations DROP COLUMN result_event_id;

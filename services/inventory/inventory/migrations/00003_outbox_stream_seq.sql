-- +goose Up
-- Where each sent event landed in its stream, so forensics ("loudly trace") read it back.
ALTER TABLE inventory.outbox ADD COLUMN stream_seq bigint;

-- +goose Down
ALTER TABLE inventory.outbox DROP COLUMN stream_seq;

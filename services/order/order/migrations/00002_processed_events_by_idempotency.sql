-- +goose Up
-- Until this migration the order service declared orders.processed_events itself, keyed by
-- an order_id uuid column. pkg/idempotency now owns the table (created at start-up, before
-- these migrations) with a text key column; a database made before keeps its rows, and
-- its table takes that shape. On a new database the table already has it: nothing to do.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = 'orders' AND table_name = 'processed_events' AND column_name = 'order_id') THEN
        ALTER TABLE orders.processed_events RENAME COLUMN order_id TO key;
        ALTER TABLE orders.processed_events ALTER COLUMN key TYPE text;
    END IF;
END $$;
-- +goose StatementEnd

-- +goose Down
SELECT 1;

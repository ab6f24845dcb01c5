-- +goose Up
-- Raw usage events are kept for a retention window after they are rolled up; this index
-- lets the pruning job find the old rolled-up ones without scanning the table.
CREATE INDEX usage_events_rolled_at_idx ON usage_events (at) WHERE rolled_up;

-- +goose Down
DROP INDEX usage_events_rolled_at_idx;

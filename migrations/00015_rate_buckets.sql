-- +goose Up
-- Token buckets shared by every instance (store/ratelimit). A bucket holds up to its
-- limit and refills at limit per period; instances lease tokens from it in small
-- chunks, so a limit holds across instances without a round trip per call. A bucket
-- idle for longer than its period is full again and may be deleted: a new row is
-- identical. `granted` is what the latest lease took (RETURNING reads it).
CREATE TABLE rate_buckets (
    key        text PRIMARY KEY,
    tokens     double precision NOT NULL,
    granted    integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL
);
CREATE INDEX rate_buckets_updated_at ON rate_buckets (updated_at);

-- +goose Down
DROP TABLE rate_buckets;

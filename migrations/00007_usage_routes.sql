-- +goose Up
-- Hourly calls per route, for the usage page's top routes without scanning raw events.
-- Filled by the same roll-up statement as usage_hourly, so every event counts once.
CREATE TABLE usage_routes_hourly (
    hour      timestamptz NOT NULL,
    app_id    uuid NOT NULL,
    client_id text NOT NULL,
    method    text NOT NULL,
    route     text NOT NULL,
    calls     bigint NOT NULL DEFAULT 0,
    errors    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, hour, client_id, method, route)
);

-- +goose Down
DROP TABLE usage_routes_hourly;

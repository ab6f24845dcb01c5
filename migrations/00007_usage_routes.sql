-- +goose Up
-- Smaller roll-ups for the usage page, all filled by the same roll-up statement as
-- usage_hourly (so every event counts exactly once), so that a 30-day view reads a few
-- thousand rows instead of one row per (hour, client, user).

-- Per client and hour: calls, credits and the latency histogram for charts and totals.
CREATE TABLE usage_client_hourly (
    hour            timestamptz NOT NULL,
    app_id          uuid NOT NULL,
    client_id       text NOT NULL,
    calls           bigint NOT NULL DEFAULT 0,
    calls_2xx       bigint NOT NULL DEFAULT 0,
    calls_3xx       bigint NOT NULL DEFAULT 0,
    calls_4xx       bigint NOT NULL DEFAULT 0,
    calls_5xx       bigint NOT NULL DEFAULT 0,
    credits         bigint NOT NULL DEFAULT 0,
    latency_buckets bigint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (app_id, hour, client_id)
);

-- Per end user and UTC day: distinct users and top users over days.
CREATE TABLE usage_user_daily (
    day       date NOT NULL,
    app_id    uuid NOT NULL,
    client_id text NOT NULL,
    user_id   uuid NOT NULL,
    calls     bigint NOT NULL DEFAULT 0,
    credits   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, day, client_id, user_id)
);
CREATE INDEX usage_user_daily_user_idx ON usage_user_daily (user_id);

-- Per route and hour: the top routes.
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
DROP TABLE usage_user_daily;
DROP TABLE usage_client_hourly;

-- +goose Up
-- Credit balances per (app, end user). A row is created with the app's free credits on
-- the user's first metered call; every call spends with one guarded UPDATE
-- (balance >= cost), so concurrent calls never take a balance below zero.
CREATE TABLE credit_balances (
    app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    balance    bigint NOT NULL CHECK (balance >= 0),
    spent      bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX credit_balances_user_idx ON credit_balances (user_id);

-- One row per gateway call, written in batches (COPY) by the gateway's usage buffer.
-- No foreign keys on purpose: a batch must never fail because an app, client or user
-- was deleted between the call and the flush (account deletion sets user_id to NULL
-- here and to the nil UUID in usage_hourly). latency_us is the time from the gateway receiving the request to the
-- upstream's response headers (or the gateway's own answer).
CREATE TABLE usage_events (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    app_id      uuid NOT NULL,
    client_id   text NOT NULL DEFAULT '',
    user_id     uuid,
    method      text NOT NULL,
    route       text NOT NULL,
    status      integer NOT NULL,
    latency_us  bigint NOT NULL,
    credits     bigint NOT NULL DEFAULT 0,
    rolled_up   boolean NOT NULL DEFAULT false
);
CREATE INDEX usage_events_app_at_idx ON usage_events (app_id, at);
-- The roll-up job's queue: only rows not yet rolled up are indexed.
CREATE INDEX usage_events_pending_idx ON usage_events (id) WHERE NOT rolled_up;

-- Hourly roll-ups per (app, client, user) for the usage charts. The roll-up job adds
-- events to these rows (additive upsert), taking events with FOR UPDATE SKIP LOCKED, so
-- it runs safely on every instance. latency_buckets counts calls per latency bucket
-- (bounds in store.LatencyBucketBoundsMicros) so p50/p95 can be computed over any range.
-- user_id is the nil UUID for calls without an end user (client_credentials, 401s).
CREATE TABLE usage_hourly (
    hour            timestamptz NOT NULL,
    app_id          uuid NOT NULL,
    client_id       text NOT NULL,
    user_id         uuid NOT NULL,
    calls           bigint NOT NULL DEFAULT 0,
    calls_2xx       bigint NOT NULL DEFAULT 0,
    calls_3xx       bigint NOT NULL DEFAULT 0,
    calls_4xx       bigint NOT NULL DEFAULT 0,
    calls_5xx       bigint NOT NULL DEFAULT 0,
    credits         bigint NOT NULL DEFAULT 0,
    latency_sum_us  bigint NOT NULL DEFAULT 0,
    latency_max_us  bigint NOT NULL DEFAULT 0,
    latency_buckets bigint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (app_id, hour, client_id, user_id)
);
CREATE INDEX usage_hourly_user_idx ON usage_hourly (user_id, hour);

-- Optional per-app scope rules: a call whose path starts with path_prefix (relative to
-- /gw/<slug>) and whose method matches ('*' = any) needs the scope. The longest prefix
-- wins, a specific method before '*'. No rule matching: any valid token passes.
CREATE TABLE gateway_scope_rules (
    app_id      uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    method      text NOT NULL DEFAULT '*' CHECK (method = '*' OR method ~ '^[A-Z]{1,16}$'),
    path_prefix text NOT NULL CHECK (path_prefix ~ '^/' AND length(path_prefix) <= 200),
    scope       text NOT NULL CHECK (scope ~ '^[\x21\x23-\x5B\x5D-\x7E]{1,64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, method, path_prefix)
);

-- +goose Down
DROP TABLE gateway_scope_rules;
DROP TABLE usage_hourly;
DROP TABLE usage_events;
DROP TABLE credit_balances;

-- +goose Up
-- Metering for AI APIs (DESIGN.md, "Metering for AI APIs").

-- Prices per route: a call whose method and path (below /gw/<slug>) match the pattern
-- costs these credits instead of the app's credits_per_call. Patterns are literal
-- segments, '*' for one segment and a trailing '**' for any rest; the most specific
-- matching rule wins (store.PriceTable).
CREATE TABLE route_prices (
    app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    method     text NOT NULL DEFAULT '*' CHECK (method = '*' OR method ~ '^[A-Z]{1,16}$'),
    pattern    text NOT NULL CHECK (pattern ~ '^/' AND length(pattern) <= 200),
    credits    bigint NOT NULL CHECK (credits >= 0 AND credits <= 1000000000),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, method, pattern)
);

-- An app's plan: a monthly allowance per user (0: none) and where users buy more.
CREATE TABLE app_plans (
    app_id            uuid PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    monthly_allowance bigint NOT NULL DEFAULT 0 CHECK (monthly_allowance >= 0 AND monthly_allowance <= 1000000000000),
    top_up_url        text NOT NULL DEFAULT '' CHECK (length(top_up_url) <= 2000),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The allowance lives with the balance: allowance_left is what is left of the month
-- starting on `period`. The spending UPDATE resets it when the month changed (lazily:
-- no job touches every row on the 1st). `balance` stays the granted or purchased
-- credits, spent after the allowance. overdraft sums the upstream-reported costs that
-- found the balance empty.
ALTER TABLE credit_balances
    ADD COLUMN allowance_left bigint NOT NULL DEFAULT 0 CHECK (allowance_left >= 0),
    ADD COLUMN period date NOT NULL DEFAULT '1970-01-01',
    ADD COLUMN overdraft bigint NOT NULL DEFAULT 0;

-- Gateway API keys: developer keys (user_id NULL) for server-to-server callers and
-- personal keys of end users. Only the keyed hash is stored (oauth.Hasher).
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id       uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id      uuid REFERENCES users (id) ON DELETE CASCADE,
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    key_hash     bytea NOT NULL UNIQUE,
    hint         text NOT NULL,
    scopes       text[] NOT NULL DEFAULT '{}',
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL
);
CREATE INDEX api_keys_app_idx ON api_keys (app_id, created_at);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at) WHERE user_id IS NOT NULL;

-- Usage: the key a call came with, the upstream's reported cost (micro-dollars, NULL
-- when not reported), the credits it could not charge, and a warning about what the
-- upstream reported (a malformed cost, say).
ALTER TABLE usage_events
    ADD COLUMN api_key_id uuid,
    ADD COLUMN upstream_cost_micros bigint,
    ADD COLUMN overdraft bigint NOT NULL DEFAULT 0,
    ADD COLUMN warning text NOT NULL DEFAULT '';
ALTER TABLE usage_routes_hourly
    ADD COLUMN credits bigint NOT NULL DEFAULT 0,
    ADD COLUMN upstream_cost_micros bigint NOT NULL DEFAULT 0;
ALTER TABLE usage_client_hourly
    ADD COLUMN upstream_cost_micros bigint NOT NULL DEFAULT 0;

-- Per API key and hour, for the usage charts' key filter.
CREATE TABLE usage_key_hourly (
    hour                 timestamptz NOT NULL,
    app_id               uuid NOT NULL,
    key_id               uuid NOT NULL,
    calls                bigint NOT NULL DEFAULT 0,
    calls_4xx            bigint NOT NULL DEFAULT 0,
    calls_5xx            bigint NOT NULL DEFAULT 0,
    credits              bigint NOT NULL DEFAULT 0,
    upstream_cost_micros bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, hour, key_id)
);

-- +goose Down
DROP TABLE usage_key_hourly;
ALTER TABLE usage_client_hourly DROP COLUMN upstream_cost_micros;
ALTER TABLE usage_routes_hourly DROP COLUMN upstream_cost_micros, DROP COLUMN credits;
ALTER TABLE usage_events DROP COLUMN warning, DROP COLUMN overdraft, DROP COLUMN upstream_cost_micros, DROP COLUMN api_key_id;
DROP TABLE api_keys;
ALTER TABLE credit_balances DROP COLUMN overdraft, DROP COLUMN period, DROP COLUMN allowance_left;
DROP TABLE app_plans;
DROP TABLE route_prices;

-- +goose Up
-- An app is a developer's protected API; its resource URL is <base>/gw/<slug>.
CREATE TABLE apps (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id                  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slug                      text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
    name                      text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    upstream_url              text NOT NULL DEFAULT '',
    access_token_ttl_seconds  integer NOT NULL DEFAULT 3600 CHECK (access_token_ttl_seconds BETWEEN 60 AND 2592000),
    refresh_token_ttl_seconds integer NOT NULL DEFAULT 2592000 CHECK (refresh_token_ttl_seconds BETWEEN 3600 AND 31536000),
    metering_enabled          boolean NOT NULL DEFAULT false,
    credits_per_call          bigint NOT NULL DEFAULT 1 CHECK (credits_per_call >= 0),
    free_credits              bigint NOT NULL DEFAULT 0 CHECK (free_credits >= 0),
    rate_limit_per_minute     integer NOT NULL DEFAULT 60 CHECK (rate_limit_per_minute >= 0),
    mcp_enabled               boolean NOT NULL DEFAULT false,
    suspended_at              timestamptz,
    suspended_reason          text NOT NULL DEFAULT '',
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX apps_owner_idx ON apps (owner_id, created_at);

-- Scopes an app offers. Built-ins (openid, email, profile) cannot be deleted. Default
-- scopes are granted when a client sends an empty scope parameter.
CREATE TABLE app_scopes (
    app_id      uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[\x21\x23-\x5B\x5D-\x7E]{1,64}$'),
    description text NOT NULL DEFAULT '' CHECK (length(description) <= 300),
    builtin     boolean NOT NULL DEFAULT false,
    is_default  boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, name)
);

-- A client belongs to an app. kind: gpt (confidential, PKCE optional), public (no
-- secret, PKCE S256 required), service (client_credentials only).
CREATE TABLE clients (
    id               text PRIMARY KEY,
    app_id           uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind             text NOT NULL CHECK (kind IN ('gpt', 'public', 'service')),
    redirect_uris    text[] NOT NULL DEFAULT '{}',
    origin           text NOT NULL DEFAULT 'portal' CHECK (origin IN ('portal', 'cli', 'registration', 'metadata_document')),
    suspended_at     timestamptz,
    suspended_reason text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    last_used_at     timestamptz
);
CREATE INDEX clients_app_idx ON clients (app_id, created_at);

-- Client secrets, stored only as keyed SHA-256 hashes. expires_at NULL is the current
-- secret; a rotation gives the old one an expiry (the overlap window) and adds a new row.
CREATE TABLE client_secrets (
    id          bigserial PRIMARY KEY,
    client_id   text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    secret_hash bytea NOT NULL UNIQUE,
    hint        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);
CREATE INDEX client_secrets_client_idx ON client_secrets (client_id);

-- +goose Down
DROP TABLE client_secrets;
DROP TABLE clients;
DROP TABLE app_scopes;
DROP TABLE apps;

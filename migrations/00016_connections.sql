-- +goose Up
-- Connections (DESIGN.md, "Connections: a vault for third-party accounts"). An app
-- declares providers; an end user links an account at one of them. A linked account
-- belongs to one app's provider: the token a user granted for app A is never handed to
-- app B, even when both declare GitHub. Every secret is sealed with AES-256-GCM
-- (oauth.Vault) under the generation key_id names, the row ID as additional data.
CREATE TABLE connection_providers (
    id                   uuid PRIMARY KEY,
    app_id               uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    provider             text NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    preset               text NOT NULL CHECK (preset IN ('github', 'google', 'notion', 'slack', 'linear', 'generic')),
    display_name         text NOT NULL,
    authorize_url        text NOT NULL,
    token_url            text NOT NULL,
    revoke_url           text NOT NULL DEFAULT '',
    userinfo_url         text NOT NULL DEFAULT '',
    scopes               text[] NOT NULL DEFAULT '{}',
    client_id            text NOT NULL,
    client_secret_sealed bytea NOT NULL,
    key_id               integer NOT NULL,
    auth_style           text NOT NULL CHECK (auth_style IN ('body', 'header')),
    pkce                 boolean NOT NULL,
    required             boolean NOT NULL DEFAULT false,
    delivery             text NOT NULL CHECK (delivery IN ('header', 'exchange')),
    created_at           timestamptz NOT NULL,
    UNIQUE (app_id, provider)
);

CREATE TABLE linked_accounts (
    id              uuid PRIMARY KEY,
    provider_id     uuid NOT NULL REFERENCES connection_providers (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id      text NOT NULL DEFAULT '', -- the provider's subject, when it names one
    account_name    text NOT NULL DEFAULT '',
    scopes          text[] NOT NULL DEFAULT '{}',
    status          text NOT NULL CHECK (status IN ('active', 'needs_reauthorization', 'revoked')),
    key_id          integer NOT NULL,
    access_sealed   bytea NOT NULL,
    refresh_sealed  bytea,       -- NULL: the provider issued no refresh token
    expires_at      timestamptz, -- NULL: the access token does not expire (GitHub OAuth apps)
    last_refresh_at timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (provider_id, user_id)
);
-- One provider account links to one AuthGPTs user of the app (409 otherwise).
CREATE UNIQUE INDEX linked_accounts_provider_account ON linked_accounts (provider_id, account_id)
    WHERE account_id <> '' AND status <> 'revoked';
CREATE INDEX linked_accounts_user ON linked_accounts (user_id);

-- Outbound authorization requests: state is 32 random bytes, stored as its keyed hash,
-- single use, 10 minutes, bound to the user and the browser session that started it.
CREATE TABLE connection_states (
    state_hash    bytea PRIMARY KEY,
    provider_id   uuid NOT NULL REFERENCES connection_providers (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_hash  bytea NOT NULL,
    code_verifier text NOT NULL DEFAULT '',
    mode          text NOT NULL CHECK (mode IN ('redirect', 'popup')),
    return_to     text NOT NULL DEFAULT '',
    expires_at    timestamptz NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX connection_states_expires_at ON connection_states (expires_at);

-- Tokens to revoke at the provider once the change that ended them has committed
-- (disconnect, a revoked grant, a deleted account): an outbox any instance drains.
CREATE TABLE connection_revocations (
    id            bigserial PRIMARY KEY,
    provider_id   uuid NOT NULL REFERENCES connection_providers (id) ON DELETE CASCADE,
    sealed_row_id uuid NOT NULL, -- the linked account the values were sealed for
    key_id        integer NOT NULL,
    access_sealed  bytea NOT NULL,
    refresh_sealed bytea,
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL
);

-- The newest vault key generation: new values are sealed under it.
CREATE TABLE connection_vault (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    key_id    integer NOT NULL
);
INSERT INTO connection_vault (key_id) VALUES (1);

-- +goose Down
DROP TABLE connection_vault;
DROP TABLE connection_revocations;
DROP TABLE connection_states;
DROP TABLE linked_accounts;
DROP TABLE connection_providers;

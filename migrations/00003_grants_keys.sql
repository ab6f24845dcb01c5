-- +goose Up
-- A grant is a user's consent to one client for a set of scopes. Codes, refresh tokens
-- and access tokens (through their gid claim) hang off a grant, so revoking it ends all
-- of them. Revocations are announced with pg_notify on channel 'authgpts_revocations'.
CREATE TABLE grants (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id    text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    app_id       uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    scopes       text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX grants_user_idx ON grants (user_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_client_idx ON grants (client_id) WHERE revoked_at IS NULL;

-- Token signing keys, private part sealed under a key derived from AUTHGPTS_SECRET.
-- The active key signs; a retired key stays in JWKS until verify_until, when every token
-- it signed has expired.
CREATE TABLE signing_keys (
    id           text PRIMARY KEY,
    alg          text NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    sealed       bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz,
    verify_until timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE grants;

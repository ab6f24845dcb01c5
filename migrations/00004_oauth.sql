-- +goose Up
-- One live grant per (user, client): a later consent widens or narrows it, remembered
-- consent finds it, and revoking it ends every code, refresh token and access token
-- (through the gid claim) issued under it.
CREATE UNIQUE INDEX grants_one_active ON grants (user_id, client_id) WHERE revoked_at IS NULL;

-- Authorization codes (RFC 6749 §4.1.2), stored as keyed hashes. A code is single use
-- (used_at), short-lived, and bound to the client, redirect URI, PKCE challenge, nonce
-- and user. Used codes are kept until they expire so that a replay is recognised and
-- revokes the grant (RFC 6749 §4.1.2, RFC 9700 §4.2.4). resource is for RFC 8707
-- resource indicators ('' = the app's resource).
CREATE TABLE auth_codes (
    hash                  bytea PRIMARY KEY,
    grant_id              uuid NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id             text NOT NULL,
    user_id               uuid NOT NULL,
    redirect_uri          text NOT NULL,
    redirect_uri_given    boolean NOT NULL DEFAULT true,
    scopes                text[] NOT NULL DEFAULT '{}',
    resource              text NOT NULL DEFAULT '',
    code_challenge        text NOT NULL DEFAULT '',
    code_challenge_method text NOT NULL DEFAULT '',
    nonce                 text NOT NULL DEFAULT '',
    auth_time             timestamptz NOT NULL,
    created_at            timestamptz NOT NULL,
    expires_at            timestamptz NOT NULL,
    used_at               timestamptz
);
CREATE INDEX auth_codes_grant_idx ON auth_codes (grant_id);
CREATE INDEX auth_codes_expires_idx ON auth_codes (expires_at);

-- Refresh tokens, stored as keyed hashes and rotated on every use. rotated_at marks a
-- token that was exchanged; presenting it again inside the grace window is answered
-- with its successor, after the window it revokes the grant (RFC 9700 §4.14.2).
CREATE TABLE refresh_tokens (
    id         bigserial PRIMARY KEY,
    hash       bytea NOT NULL UNIQUE,
    grant_id   uuid NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    client_id  text NOT NULL,
    user_id    uuid NOT NULL,
    scopes     text[] NOT NULL DEFAULT '{}',
    resource   text NOT NULL DEFAULT '',
    auth_time  timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_grant_idx ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- One active signing key per algorithm instead of one overall: ES256 signs access tokens
-- (fast), RS256 signs ID tokens (the OpenID Connect default every relying party supports).
DROP INDEX signing_keys_one_active;
CREATE UNIQUE INDEX signing_keys_one_active_per_alg ON signing_keys (alg) WHERE retired_at IS NULL;

-- Every server instance caches clients, their apps, scopes and secret hashes. Any write to
-- those tables, by whichever code path, tells the instances to drop their copy
-- (channel 'authgpts_clients', payload 'client:<id>' or 'app:<id>'). Bookkeeping columns
-- (last_used_at, updated_at) alone do not count as a change.
-- +goose StatementBegin
CREATE FUNCTION authgpts_notify_client_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rec record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        rec := OLD;
    ELSE
        rec := NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - 'last_used_at' - 'updated_at') = (to_jsonb(OLD) - 'last_used_at' - 'updated_at') THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'clients' THEN
        PERFORM pg_notify('authgpts_clients', 'client:' || (to_jsonb(rec) ->> 'id'));
    ELSIF TG_TABLE_NAME = 'client_secrets' THEN
        PERFORM pg_notify('authgpts_clients', 'client:' || (to_jsonb(rec) ->> 'client_id'));
    ELSIF TG_TABLE_NAME = 'apps' THEN
        PERFORM pg_notify('authgpts_clients', 'app:' || (to_jsonb(rec) ->> 'id'));
    ELSE
        PERFORM pg_notify('authgpts_clients', 'app:' || (to_jsonb(rec) ->> 'app_id'));
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER clients_notify AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION authgpts_notify_client_change();
CREATE TRIGGER client_secrets_notify AFTER INSERT OR UPDATE OR DELETE ON client_secrets
    FOR EACH ROW EXECUTE FUNCTION authgpts_notify_client_change();
CREATE TRIGGER apps_notify AFTER UPDATE OR DELETE ON apps
    FOR EACH ROW EXECUTE FUNCTION authgpts_notify_client_change();
CREATE TRIGGER app_scopes_notify AFTER INSERT OR UPDATE OR DELETE ON app_scopes
    FOR EACH ROW EXECUTE FUNCTION authgpts_notify_client_change();

-- +goose Down
DROP TRIGGER app_scopes_notify ON app_scopes;
DROP TRIGGER apps_notify ON apps;
DROP TRIGGER client_secrets_notify ON client_secrets;
DROP TRIGGER clients_notify ON clients;
DROP FUNCTION authgpts_notify_client_change();
DROP INDEX signing_keys_one_active_per_alg;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;
DROP TABLE refresh_tokens;
DROP TABLE auth_codes;
DROP INDEX grants_one_active;

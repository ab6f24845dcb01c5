-- +goose Up
-- Identity sources (DESIGN.md, "Your users sign in with your own auth"). A user is either
-- an AuthGPTs email-code account (issuer '') or an identity from an upstream provider:
-- the pair (issuer, subject), e.g. ('https://accounts.google.com', '1078…'). The same
-- person through two sources is two rows; their grants, credits and usage hang off the
-- local user ID as before. email is then the upstream's email when it said it was
-- verified, else ''; only email-code accounts are unique by email.
ALTER TABLE users ADD COLUMN issuer text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN subject text NOT NULL DEFAULT '';
ALTER TABLE users ADD CONSTRAINT users_identity_check CHECK ((issuer = '') = (subject = '') AND length(subject) <= 255 AND length(issuer) <= 2048);
ALTER TABLE users DROP CONSTRAINT users_email_key;
CREATE UNIQUE INDEX users_email_local ON users (email) WHERE issuer = '';
CREATE UNIQUE INDEX users_identity ON users (issuer, subject) WHERE issuer <> '';

-- How an app's end users sign in. No row (or kind 'email') is the AuthGPTs email code.
-- The upstream client secret and the own-login signing secret are sealed with AES-256-GCM
-- under a key derived from AUTHGPTS_SECRET, the app ID as associated data; they are never
-- shown again. Kept when the developer switches back to email, so switching is undoable.
CREATE TABLE app_identity_sources (
    app_id               uuid PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    kind                 text NOT NULL CHECK (kind IN ('email', 'oidc', 'github', 'own')),
    issuer               text NOT NULL DEFAULT '' CHECK (length(issuer) <= 2048),
    client_id            text NOT NULL DEFAULT '' CHECK (length(client_id) <= 512),
    client_secret_sealed bytea,
    scopes               text NOT NULL DEFAULT '' CHECK (length(scopes) <= 1024),
    own_login_url        text NOT NULL DEFAULT '' CHECK (length(own_login_url) <= 2048),
    own_secret_sealed    bytea,
    own_public_key       text NOT NULL DEFAULT '' CHECK (length(own_public_key) <= 8192),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- Every instance caches apps for the authorization endpoint: a change tells them.
CREATE TRIGGER app_identity_sources_notify AFTER INSERT OR UPDATE OR DELETE ON app_identity_sources
    FOR EACH ROW EXECUTE FUNCTION authgpts_notify_client_change();

-- Outbound sign-ins in flight: the state sent to the upstream, stored as a keyed hash,
-- single use (used_at), 10 minutes, bound to the browser that started it (keyed hash of
-- a random cookie). The PKCE verifier and the nonce are derived from the state with a
-- key of their own, so no secret of the flow is stored. app_id NULL: the portal's own
-- sign-in (operator-configured provider).
CREATE TABLE upstream_logins (
    state_hash   bytea PRIMARY KEY,
    browser_hash bytea NOT NULL,
    app_id       uuid REFERENCES apps (id) ON DELETE CASCADE,
    provider     text NOT NULL,
    return_to    text NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX upstream_logins_expires_idx ON upstream_logins (expires_at);

-- Assertions from a developer's own login page are single use: their jti is kept until
-- the assertion expires (at most 5 minutes).
CREATE TABLE own_login_assertions (
    app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    jti        text NOT NULL CHECK (length(jti) BETWEEN 1 AND 255),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, jti)
);

-- +goose Down
DROP TABLE own_login_assertions;
DROP TABLE upstream_logins;
DROP TABLE app_identity_sources;
DELETE FROM users WHERE issuer <> '';
DROP INDEX users_identity;
DROP INDEX users_email_local;
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
ALTER TABLE users DROP CONSTRAINT users_identity_check;
ALTER TABLE users DROP COLUMN subject;
ALTER TABLE users DROP COLUMN issuer;

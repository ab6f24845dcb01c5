-- +goose Up
-- MCP clients (issue 7). Dynamic registration (RFC 7591) is global and a client ID
-- metadata document names no server, so clients of those two origins belong to no app
-- when they are created: the app is bound per authorization request, from its RFC 8707
-- resource, and recorded on the grant. Every other client keeps its app.
ALTER TABLE clients ALTER COLUMN app_id DROP NOT NULL;
ALTER TABLE clients ADD CONSTRAINT clients_app_required
    CHECK (app_id IS NOT NULL OR origin IN ('registration', 'metadata_document'));

-- The client metadata as registered (RFC 7591 §2) or as last fetched (metadata
-- documents): echoed by registration management (RFC 7592) and shown on the consent page.
-- token_endpoint_auth_method is the registered method; '' means "from the kind" (portal
-- and CLI clients). registration_token_hash is the keyed hash of the RFC 7592
-- registration access token. metadata_expires_at: when a metadata document must be
-- fetched again (HTTP caching, clamped to a floor and a ceiling).
ALTER TABLE clients
    ADD COLUMN metadata                   jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN token_endpoint_auth_method text NOT NULL DEFAULT ''
        CHECK (token_endpoint_auth_method IN ('', 'none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt')),
    ADD COLUMN registration_token_hash    bytea UNIQUE,
    ADD COLUMN metadata_expires_at        timestamptz;
-- The janitor looks for registrations nobody used.
CREATE INDEX clients_registered_idx ON clients (created_at) WHERE origin IN ('registration', 'metadata_document');

-- One app-less client (Claude Code's metadata document, say) connects one user to many
-- apps: the live grant is per (user, client, app).
DROP INDEX grants_one_active;
CREATE UNIQUE INDEX grants_one_active ON grants (user_id, client_id, app_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_app_client_idx ON grants (app_id, client_id) WHERE revoked_at IS NULL;

-- private_key_jwt (RFC 7523 §3): an assertion's jti is accepted once per client until
-- the assertion expires. The primary key makes the check one INSERT, on every instance.
CREATE TABLE client_assertion_jtis (
    client_id  text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    jti        text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expires_idx ON client_assertion_jtis (expires_at);

-- +goose Down
DROP TABLE client_assertion_jtis;
DROP INDEX grants_app_client_idx;
DROP INDEX grants_one_active;
CREATE UNIQUE INDEX grants_one_active ON grants (user_id, client_id) WHERE revoked_at IS NULL;
DROP INDEX clients_registered_idx;
ALTER TABLE clients
    DROP COLUMN metadata_expires_at,
    DROP COLUMN registration_token_hash,
    DROP COLUMN token_endpoint_auth_method,
    DROP COLUMN metadata;
DELETE FROM clients WHERE app_id IS NULL;
ALTER TABLE clients DROP CONSTRAINT clients_app_required;
ALTER TABLE clients ALTER COLUMN app_id SET NOT NULL;

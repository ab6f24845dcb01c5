-- +goose Up
-- Webhooks (DESIGN.md "Webhooks"): an app's endpoints, the events outbox and one
-- delivery per (event, endpoint) with its attempts.

-- An endpoint's signing secrets are sealed with AES-256-GCM under a key derived from
-- AUTHGPTS_SECRET (the server must sign, so they cannot be hashes). During a rotation the
-- previous secret signs too until previous_until.
CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY,
    app_id          uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    url             text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    events          text[] NOT NULL CHECK (cardinality(events) > 0),
    secret_sealed   bytea NOT NULL,
    secret_hint     text NOT NULL,
    previous_sealed bytea,
    previous_until  timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    -- The first failed attempt since the last success; five days of failures disable it.
    failing_since   timestamptz,
    disabled_at     timestamptz,
    disabled_reason text
);
CREATE INDEX webhook_endpoints_app_idx ON webhook_endpoints (app_id);

-- The outbox: written in the transaction of the change it reports. payload is the exact
-- body that is signed and sent (text, so its bytes never change; built as jsonb, so its
-- keys come in jsonb's order: data, type, timestamp).
CREATE TABLE webhook_events (
    id         text PRIMARY KEY,
    app_id     uuid NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    type       text NOT NULL,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX webhook_events_created_idx ON webhook_events (created_at);

-- state: pending (to deliver at next_attempt_at), delivered, failed (retries used up).
-- A worker claims a pending row by setting locked_until (its lease) and claim; a worker
-- killed mid-delivery leaves the lease to expire, and the row is taken again.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id        text NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    locked_until    timestamptz,
    claim           uuid,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    id            bigserial PRIMARY KEY,
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id   uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempt       int NOT NULL,
    at            timestamptz NOT NULL,
    status_code   int,
    latency_ms    int NOT NULL,
    error         text NOT NULL DEFAULT '',
    response_body text NOT NULL DEFAULT '',
    next_retry_at timestamptz
);
CREATE INDEX webhook_attempts_endpoint_idx ON webhook_attempts (endpoint_id, id DESC);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id);

-- Per-app webhook settings: the credits.low threshold (0: off).
CREATE TABLE webhook_settings (
    app_id                uuid PRIMARY KEY REFERENCES apps (id) ON DELETE CASCADE,
    credits_low_threshold bigint NOT NULL DEFAULT 0 CHECK (credits_low_threshold >= 0)
);

-- A credits.low / credits.exhausted alert already sent for a balance: the row makes the
-- event fire once per crossing. A developer's top-up above the threshold deletes it.
CREATE TABLE credit_alerts (
    app_id  uuid NOT NULL,
    user_id uuid NOT NULL,
    kind    text NOT NULL,
    at      timestamptz NOT NULL,
    PRIMARY KEY (app_id, user_id, kind),
    FOREIGN KEY (app_id, user_id) REFERENCES credit_balances (app_id, user_id) ON DELETE CASCADE
);

-- webhook_emit writes one event for the app and a delivery for every enabled endpoint
-- subscribed to its type, then wakes the delivery workers (NOTIFY, sent at commit). It
-- writes nothing when no endpoint wants the event. Called in the transaction of the change.
-- +goose StatementBegin
CREATE FUNCTION webhook_emit(p_app uuid, p_type text, p_data jsonb, p_at timestamptz) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    ev text;
    n  int;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints
                    WHERE app_id = p_app AND disabled_at IS NULL AND p_type = ANY (events)) THEN
        RETURN 0;
    END IF;
    ev := 'msg_' || replace(gen_random_uuid()::text, '-', '');
    INSERT INTO webhook_events (id, app_id, type, payload, created_at)
    VALUES (ev, p_app, p_type,
            jsonb_build_object('type', p_type,
                               'timestamp', to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                               'data', p_data)::text,
            p_at);
    INSERT INTO webhook_deliveries (event_id, endpoint_id, next_attempt_at, created_at)
    SELECT ev, id, p_at, p_at FROM webhook_endpoints
     WHERE app_id = p_app AND disabled_at IS NULL AND p_type = ANY (events);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM pg_notify('authgpts_webhooks', p_app::text);
    RETURN n;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION webhook_emit(uuid, text, jsonb, timestamptz);
DROP TABLE credit_alerts;
DROP TABLE webhook_settings;
DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_events;
DROP TABLE webhook_endpoints;

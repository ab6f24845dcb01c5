-- +goose Up
CREATE TABLE users (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email            text NOT NULL UNIQUE CHECK (email = lower(email)),
    is_admin         boolean NOT NULL DEFAULT false,
    suspended_at     timestamptz,
    suspended_reason text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_login_at    timestamptz
);

-- Server-side sessions: the cookie holds only a random ID; the row holds its keyed hash,
-- so a database leak does not hand out live sessions and deleting the row signs out.
CREATE TABLE sessions (
    id_hash      bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    ip           text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

-- One live code per email: a new code replaces the previous one.
CREATE TABLE otps (
    email      text PRIMARY KEY,
    code_hash  bytea NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Every code sent, for the resend throttle and the per-email and per-IP limits.
CREATE TABLE otp_sends (
    id      bigserial PRIMARY KEY,
    email   text NOT NULL,
    ip      text NOT NULL,
    sent_at timestamptz NOT NULL
);
CREATE INDEX otp_sends_email_idx ON otp_sends (email, sent_at);
CREATE INDEX otp_sends_ip_idx ON otp_sends (ip, sent_at);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    actor_email text NOT NULL DEFAULT '',
    action      text NOT NULL,
    target_type text NOT NULL DEFAULT '',
    target_id   text NOT NULL DEFAULT '',
    ip          text NOT NULL DEFAULT '',
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC);

-- +goose Down
DROP TABLE audit_log;
DROP TABLE otp_sends;
DROP TABLE otps;
DROP TABLE sessions;
DROP TABLE users;

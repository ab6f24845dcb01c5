-- +goose Up
-- Linked sign-in identities (issue 10): the same person through two identity sources is
-- two users until they link them on /account. Users with the same link_id are one
-- person: one account page lists and manages the grants, keys and linked accounts of
-- every identity in the group, and deleting the account deletes them all. Tokens stay
-- per identity (an app's tokens carry the subject of the identity its source yields).
ALTER TABLE users ADD COLUMN link_id uuid;
CREATE INDEX users_link_idx ON users (link_id) WHERE link_id IS NOT NULL;

-- Proof for linking: a sign-in that replaced another identity's session in the same
-- browser remembers that identity and when it signed in. /account offers to link the
-- two only while both sign-ins are recent (handlers/account, linkWindow).
ALTER TABLE sessions ADD COLUMN prev_user_id uuid REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE sessions ADD COLUMN prev_started_at timestamptz;

-- +goose Down
ALTER TABLE sessions DROP COLUMN prev_started_at;
ALTER TABLE sessions DROP COLUMN prev_user_id;
DROP INDEX users_link_idx;
ALTER TABLE users DROP COLUMN link_id;

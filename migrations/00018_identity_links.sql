-- +goose Up
-- Linked sign-in identities (issue 10): the same person through two identity sources is
-- two users until they link them on /account. Users with the same link_id are one
-- person: one account page lists and manages the grants, keys and linked accounts of
-- every identity in the group, and deleting the account deletes them all. Tokens stay
-- per identity (an app's tokens carry the subject of the identity its source yields).
ALTER TABLE users ADD COLUMN link_id uuid;
CREATE INDEX users_link_idx ON users (link_id) WHERE link_id IS NOT NULL;

-- Proof for linking: the identity signed in asks to link another (link_intent_at); the
-- sign-in that replaces its session in the same browser remembers that identity and
-- when it asked (link_from_*). /account offers the link only while both are recent
-- (handlers/account, linkWindow).
ALTER TABLE sessions ADD COLUMN link_intent_at timestamptz;
ALTER TABLE sessions ADD COLUMN link_from_user_id uuid REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE sessions ADD COLUMN link_from_at timestamptz;

-- +goose Down
ALTER TABLE sessions DROP COLUMN link_from_at;
ALTER TABLE sessions DROP COLUMN link_from_user_id;
ALTER TABLE sessions DROP COLUMN link_intent_at;
DROP INDEX users_link_idx;
ALTER TABLE users DROP COLUMN link_id;

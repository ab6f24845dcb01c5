-- +goose Up
-- The revocation worker claims queued revocations with a lease instead of holding their
-- rows locked while it calls the providers (store.PendingRevocations): no transaction
-- stays open across HTTP calls, and a worker killed mid-call leaves rows that are due
-- again once the lease ends.
ALTER TABLE connection_revocations ADD COLUMN locked_until timestamptz;

-- +goose Down
ALTER TABLE connection_revocations DROP COLUMN locked_until;

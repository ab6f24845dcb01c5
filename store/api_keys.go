package store

import (
	"context"
	"time"

	"github.com/lib/pq"
)

const (
	apiKeyColumns = `k.id, k.app_id, coalesce(k.user_id::text, '') AS user_id, coalesce(k.created_by::text, '') AS created_by,
		k.name, k.hint, k.scopes, k.expires_at, k.revoked_at, k.last_used_at, k.created_at`

	// A developer key is created on the owner's app only.
	qInsertDeveloperKey = `
		INSERT INTO api_keys (app_id, created_by, name, key_hash, hint, scopes, expires_at, created_at)
		SELECT a.id, $2, $3, $4, $5, $6, $7, $8 FROM apps a WHERE a.id = $1 AND a.owner_id = $2
		RETURNING id`
	qInsertPersonalKey = `
		INSERT INTO api_keys (app_id, user_id, created_by, name, key_hash, hint, scopes, expires_at, created_at)
		VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8)
		RETURNING id`
	qDeveloperKeysByApp = `
		SELECT ` + apiKeyColumns + `, '' AS app_name, '' AS app_slug FROM api_keys k
		 WHERE k.app_id = $1 AND k.user_id IS NULL ORDER BY k.revoked_at IS NOT NULL, k.created_at DESC`
	qKeysOfApp = `
		SELECT ` + apiKeyColumns + `, '' AS app_name, '' AS app_slug FROM api_keys k WHERE k.app_id = $1
		 ORDER BY k.user_id IS NOT NULL, k.created_at`
	qPersonalKeysByUser = `
		SELECT ` + apiKeyColumns + `, a.name AS app_name, a.slug AS app_slug FROM api_keys k JOIN apps a ON a.id = k.app_id
		 WHERE k.user_id = ANY($1::uuid[]) ORDER BY k.revoked_at IS NOT NULL, k.created_at DESC`
	qRevokeDeveloperKey = `
		UPDATE api_keys k SET revoked_at = $3 FROM apps a
		 WHERE k.id = $1 AND a.id = k.app_id AND a.owner_id = $2 AND k.user_id IS NULL AND k.revoked_at IS NULL`
	qRevokePersonalKey = `
		UPDATE api_keys k SET revoked_at = $3 WHERE k.id = $1 AND k.user_id = ANY($2::uuid[]) AND k.revoked_at IS NULL`

	// The gateway's lookup: by keyed hash only, whatever the key's state, so an unknown
	// and a revoked key cost the same query. A personal key is live only while its user
	// still has a live grant for the app.
	qAPIKeyByHash = `
		SELECT k.id, k.app_id, coalesce(k.user_id::text, '') AS user_id, k.scopes, k.expires_at,
		       k.revoked_at IS NOT NULL AS revoked,
		       coalesce(u.suspended_at IS NOT NULL, false) AS user_suspended,
		       (k.user_id IS NULL OR EXISTS (SELECT 1 FROM grants g
		                WHERE g.user_id = k.user_id AND g.app_id = k.app_id AND g.revoked_at IS NULL)) AS granted
		  FROM api_keys k LEFT JOIN users u ON u.id = k.user_id
		 WHERE k.key_hash = $1`

	// The scopes a user granted to an app, over all their live grants (any client).
	// The first of the users (in the array's order) with a live grant for the app, and
	// the scopes of all that user's live grants for it.
	qKeyHolder = `
		WITH holder AS (
			SELECT g.user_id FROM grants g
			 WHERE g.user_id = ANY($1::uuid[]) AND g.app_id = $2 AND g.revoked_at IS NULL
			 ORDER BY array_position($1::uuid[], g.user_id) LIMIT 1)
		SELECT h.user_id, array_agg(DISTINCT s ORDER BY s) AS scopes
		  FROM holder h JOIN grants g ON g.user_id = h.user_id AND g.app_id = $2 AND g.revoked_at IS NULL,
		       unnest(g.scopes) AS s
		 GROUP BY h.user_id`

	qTouchKeys = `
		UPDATE api_keys k SET last_used_at = v.at
		  FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at)
		 WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.at)`
)

// APIKey is a gateway API key as the portal and /account list it; the key itself is
// shown once at creation and only its keyed hash is stored.
type APIKey struct {
	ID         string         `db:"id"`
	AppID      string         `db:"app_id"`
	UserID     string         `db:"user_id"` // "" for a developer key
	CreatedBy  string         `db:"created_by"`
	Name       string         `db:"name"`
	Hint       string         `db:"hint"`
	Scopes     pq.StringArray `db:"scopes"`
	ExpiresAt  *time.Time     `db:"expires_at"`
	RevokedAt  *time.Time     `db:"revoked_at"`
	LastUsedAt *time.Time     `db:"last_used_at"`
	CreatedAt  time.Time      `db:"created_at"`
	AppName    string         `db:"app_name"` // personal keys only
	AppSlug    string         `db:"app_slug"` // personal keys only
}

// Expired reports whether the key's expiry has passed at now.
func (k APIKey) Expired(now time.Time) bool { return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) }

// NewAPIKey is a key to store: its hash, hint, name, scopes and expiry.
type NewAPIKey struct {
	AppID     string
	Name      string
	Hash      []byte
	Hint      string
	Scopes    []string
	ExpiresAt *time.Time
}

// APIKeyStatus is what the gateway needs of a presented key.
type APIKeyStatus struct {
	ID            string         `db:"id"`
	AppID         string         `db:"app_id"`
	UserID        string         `db:"user_id"` // "" for a developer key
	Scopes        pq.StringArray `db:"scopes"`
	ExpiresAt     *time.Time     `db:"expires_at"`
	Revoked       bool           `db:"revoked"`
	UserSuspended bool           `db:"user_suspended"`
	Granted       bool           `db:"granted"` // a personal key's user still has a live grant for the app
}

// Usable reports whether the key may call appID at now.
func (k APIKeyStatus) Usable(appID string, now time.Time) bool {
	return !k.Revoked && !k.UserSuspended && k.Granted && k.AppID == appID &&
		(k.ExpiresAt == nil || now.Before(*k.ExpiresAt))
}

// CreateDeveloperKey stores a developer key of the owner's app and returns its ID;
// another developer's app is ErrNotFound. Call it in the transaction that audits it.
func (s *Store) CreateDeveloperKey(ctx context.Context, ownerID string, k NewAPIKey, now time.Time) (string, error) {
	var id string
	err := s.getContext(ctx, &id, qInsertDeveloperKey, k.AppID, ownerID, k.Name, k.Hash, k.Hint, scopeArray(k.Scopes), k.ExpiresAt, now)
	return id, wrap("create developer key", err)
}

// CreatePersonalKey stores a personal key of userID for an app; the caller has checked
// the scopes against KeyHolder's.
func (s *Store) CreatePersonalKey(ctx context.Context, userID string, k NewAPIKey, now time.Time) (string, error) {
	var id string
	err := s.getContext(ctx, &id, qInsertPersonalKey, k.AppID, userID, k.Name, k.Hash, k.Hint, scopeArray(k.Scopes), k.ExpiresAt, now)
	return id, wrap("create personal key", err)
}

// DeveloperKeysByApp lists an app's developer keys, live ones first, newest first.
func (s *Store) DeveloperKeysByApp(ctx context.Context, appID string) ([]APIKey, error) {
	out := []APIKey{}
	err := s.selectContext(ctx, &out, qDeveloperKeysByApp, appID)
	return out, wrap("developer keys by app", err)
}

// KeysOfApp lists every key of an app, developer keys first (the usage page's filter).
func (s *Store) KeysOfApp(ctx context.Context, appID string) ([]APIKey, error) {
	out := []APIKey{}
	err := s.selectContext(ctx, &out, qKeysOfApp, appID)
	return out, wrap("keys of app", err)
}

// PersonalKeysByUser lists the personal keys of the users (one person's linked
// identities) with their apps, live ones first.
func (s *Store) PersonalKeysByUser(ctx context.Context, userIDs []string) ([]APIKey, error) {
	out := []APIKey{}
	err := s.selectContext(ctx, &out, qPersonalKeysByUser, pq.Array(userIDs))
	return out, wrap("personal keys by user", err)
}

// RevokeDeveloperKey revokes a live developer key of the owner's app; every gateway
// drops it when the transaction commits (RevocationsChannel "apikey:<id>"). An unknown,
// foreign or already revoked key is ErrNotFound.
func (s *Store) RevokeDeveloperKey(ctx context.Context, ownerID, keyID string, now time.Time) error {
	if !ValidUUID(keyID) {
		return ErrNotFound
	}
	return wrap("revoke developer key", s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "revoke developer key", qRevokeDeveloperKey, keyID, ownerID, now); err != nil {
			return err
		}
		return tx.notifyChange(ctx, RevocationsChannel, "apikey:"+keyID)
	}))
}

// RevokePersonalKey revokes a live personal key of one of the users (one person's
// linked identities), as RevokeDeveloperKey.
func (s *Store) RevokePersonalKey(ctx context.Context, userIDs []string, keyID string, now time.Time) error {
	if !ValidUUID(keyID) {
		return ErrNotFound
	}
	return wrap("revoke personal key", s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "revoke personal key", qRevokePersonalKey, keyID, pq.Array(userIDs), now); err != nil {
			return err
		}
		return tx.notifyChange(ctx, RevocationsChannel, "apikey:"+keyID)
	}))
}

// APIKeyByHash returns the state of the key with that keyed hash, ErrNotFound when no
// key has it. The query is the same for every key, live, revoked or unknown.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (APIKeyStatus, error) {
	var k APIKeyStatus
	err := s.getContext(ctx, &k, qAPIKeyByHash, hash)
	return k, wrap("api key by hash", err)
}

// KeyHolder returns which of userIDs (one person's identities, in the order they are
// preferred) a personal key for appID acts as: the first with a live grant for the app,
// with the scopes it granted over all its live grants (a key is never wider).
// ErrNotFound when none of them connected the app.
func (s *Store) KeyHolder(ctx context.Context, userIDs []string, appID string) (string, []string, error) {
	var row struct {
		UserID string         `db:"user_id"`
		Scopes pq.StringArray `db:"scopes"`
	}
	if err := s.getContext(ctx, &row, qKeyHolder, pq.Array(userIDs), appID); err != nil {
		return "", nil, wrap("key holder", err)
	}
	return row.UserID, row.Scopes, nil
}

// scopeArray is never NULL: a key without scopes has the empty array.
func scopeArray(s []string) any {
	if s == nil {
		s = []string{}
	}
	return pq.Array(s)
}

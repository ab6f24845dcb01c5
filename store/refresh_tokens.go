package store

import (
	"context"
	"time"

	"github.com/lib/pq"
)

// lastUsedStale (with the time as $8) and lastUsedStale2 (as $2) select a grant whose
// last_used_at is more than a minute old.
const (
	lastUsedStale  = `(last_used_at IS NULL OR last_used_at < $8::timestamptz - interval '1 minute')`
	lastUsedStale2 = `(last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute')`
)

const (
	refreshColumns = `r.id, r.grant_id, r.client_id, r.user_id, r.scopes, r.resource, r.auth_time,
		r.created_at, r.expires_at, r.rotated_at, r.revoked_at`

	// A code exchange stores the first refresh token of the grant and notes the grant's
	// use, in one round trip. last_used_at has minute precision: a grant used again
	// within the minute is not written (nor its row locked) once more.
	qInsertRefreshToken = `
		WITH g AS (UPDATE grants SET last_used_at = $8 WHERE id = $2 AND ` + lastUsedStale + `)
		INSERT INTO refresh_tokens (hash, grant_id, client_id, user_id, scopes, resource, auth_time, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	// The token with its grant's state and its user: everything a refresh decides on.
	qRefreshTokenByHash = `
		SELECT ` + refreshColumns + `, g.scopes AS grant_scopes, g.app_id::text AS grant_app_id, g.revoked_at IS NOT NULL AS grant_revoked,
		       u.email, u.issuer, u.subject, u.suspended_at IS NOT NULL AS user_suspended
		  FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = r.user_id
		 WHERE r.hash = $1`
	// Rotation is a compare-and-swap on rotated_at IS NULL: of two concurrent refreshes
	// with one token exactly one inserts the successor; the other sees zero rows.
	qRotateRefreshToken = `
		WITH parent AS (
		    UPDATE refresh_tokens SET rotated_at = $2
		     WHERE id = $1 AND rotated_at IS NULL AND revoked_at IS NULL
		    RETURNING grant_id, client_id, user_id, scopes, resource, auth_time
		), g AS (UPDATE grants SET last_used_at = $2 WHERE id = (SELECT grant_id FROM parent) AND ` + lastUsedStale2 + `)
		INSERT INTO refresh_tokens (hash, grant_id, client_id, user_id, scopes, resource, auth_time, created_at, expires_at)
		SELECT $3, grant_id, client_id, user_id, scopes, resource, auth_time, $2, $4 FROM parent
		RETURNING id`
	qDeleteOldRefreshTokens = `DELETE FROM refresh_tokens WHERE expires_at < $1`
)

// RefreshToken is a stored refresh token (the token itself is only hashed).
type RefreshToken struct {
	ID        int64          `db:"id"`
	GrantID   string         `db:"grant_id"`
	ClientID  string         `db:"client_id"`
	UserID    string         `db:"user_id"`
	Scopes    pq.StringArray `db:"scopes"`
	Resource  string         `db:"resource"`
	AuthTime  time.Time      `db:"auth_time"`
	CreatedAt time.Time      `db:"created_at"`
	ExpiresAt time.Time      `db:"expires_at"`
	RotatedAt *time.Time     `db:"rotated_at"`
	RevokedAt *time.Time     `db:"revoked_at"`
}

// RefreshTokenState is a refresh token with the state of its grant and user.
type RefreshTokenState struct {
	RefreshToken
	GrantScopes   pq.StringArray `db:"grant_scopes"`
	GrantAppID    string         `db:"grant_app_id"`
	GrantRevoked  bool           `db:"grant_revoked"`
	Email         string         `db:"email"`
	Issuer        string         `db:"issuer"`
	Subject       string         `db:"subject"`
	UserSuspended bool           `db:"user_suspended"`
}

// IsLive reports whether the token can be exchanged at now: not rotated, not revoked,
// not expired, its grant live and its user not suspended.
func (r RefreshTokenState) IsLive(now time.Time) bool {
	return r.RotatedAt == nil && r.RevokedAt == nil && now.Before(r.ExpiresAt) && !r.GrantRevoked && !r.UserSuspended
}

// NewRefreshToken is a refresh token to store.
type NewRefreshToken struct {
	Hash      []byte
	GrantID   string
	ClientID  string
	UserID    string
	Scopes    []string
	Resource  string
	AuthTime  time.Time
	ExpiresAt time.Time
}

// CreateRefreshToken stores the first refresh token issued from a code and records the
// grant's last use.
func (s *Store) CreateRefreshToken(ctx context.Context, n NewRefreshToken, now time.Time) error {
	scopes := n.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	_, err := s.q.ExecContext(ctx, qInsertRefreshToken, n.Hash, n.GrantID, n.ClientID, n.UserID,
		pq.Array(scopes), n.Resource, n.AuthTime, now, n.ExpiresAt)
	return wrap("create refresh token", err)
}

// RefreshTokenByHash returns the token with this hash and the state of its grant and
// user, or ErrNotFound.
func (s *Store) RefreshTokenByHash(ctx context.Context, hash []byte) (RefreshTokenState, error) {
	var r RefreshTokenState
	err := s.getContext(ctx, &r, qRefreshTokenByHash, hash)
	return r, wrap("refresh token by hash", err)
}

// RotateRefreshToken marks the token id rotated at now and stores its successor (same
// grant, client, user, scopes, resource and auth time) with the given hash and expiry,
// records the grant's use, and returns true, all in one statement. It returns false,
// writing nothing, when the token was rotated or revoked meanwhile (a concurrent
// refresh won the race).
func (s *Store) RotateRefreshToken(ctx context.Context, id int64, successorHash []byte, expiresAt, now time.Time) (bool, error) {
	var childID int64
	err := wrap("rotate refresh token", s.getContext(ctx, &childID, qRotateRefreshToken, id, now, successorHash, expiresAt))
	switch {
	case err == nil:
		return true, nil
	case err == ErrNotFound:
		return false, nil
	default:
		return false, err
	}
}

// DeleteExpiredRefreshTokens removes refresh tokens that expired before cutoff.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, qDeleteOldRefreshTokens, cutoff)
	if err != nil {
		return 0, wrap("delete expired refresh tokens", err)
	}
	return res.RowsAffected()
}

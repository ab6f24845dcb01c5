package store

import (
	"context"
	"errors"
	"time"

	"github.com/lib/pq"
)

const (
	grantColumns = `g.id, g.user_id, g.client_id, g.app_id, g.scopes, g.created_at, g.updated_at,
		g.last_used_at, g.revoked_at`

	qActiveGrant = `SELECT ` + grantColumns + ` FROM grants g
		 WHERE g.user_id = $1 AND g.client_id = $2 AND g.app_id = $3 AND g.revoked_at IS NULL`
	qGrantByID = `SELECT ` + grantColumns + ` FROM grants g WHERE g.id = $1`
	// A consent creates the live grant of (user, client, app) or replaces its scopes; the
	// partial unique index grants_one_active makes that one statement.
	qUpsertGrant = `
		INSERT INTO grants AS g (user_id, client_id, app_id, scopes, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (user_id, client_id, app_id) WHERE revoked_at IS NULL DO UPDATE
		   SET scopes = EXCLUDED.scopes, updated_at = EXCLUDED.updated_at
		RETURNING ` + grantColumns + `, (xmax = 0) AS inserted`
	qRevokeGrant = `
		UPDATE grants SET revoked_at = $2, updated_at = $2 WHERE id = $1 AND revoked_at IS NULL`
	qRevokeGrantRefreshTokens = `
		UPDATE refresh_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL`
	qNotifyGrantRevoked = `SELECT pg_notify('` + RevocationsChannel + `', 'grant:' || $1::text)`
	qGrantLiveness      = `
		SELECT g.user_id, g.revoked_at IS NOT NULL AS revoked, u.suspended_at IS NOT NULL AS user_suspended
		  FROM grants g JOIN users u ON u.id = g.user_id WHERE g.id = $1`
)

// Grant is a user's consent to one client of an app for a set of scopes.
type Grant struct {
	ID         string         `db:"id"`
	UserID     string         `db:"user_id"`
	ClientID   string         `db:"client_id"`
	AppID      string         `db:"app_id"`
	Scopes     pq.StringArray `db:"scopes"`
	CreatedAt  time.Time      `db:"created_at"`
	UpdatedAt  time.Time      `db:"updated_at"`
	LastUsedAt *time.Time     `db:"last_used_at"`
	RevokedAt  *time.Time     `db:"revoked_at"`
}

// IsRevoked reports whether the grant was revoked.
func (g Grant) IsRevoked() bool { return g.RevokedAt != nil }

// NewGrant is a consent to record.
type NewGrant struct {
	UserID   string
	ClientID string
	AppID    string
	Scopes   []string
}

// ActiveGrant returns the live grant of the user to the client for the app, or
// ErrNotFound. There is one per (user, client, app): a client without an app of its own
// (an MCP client) may be connected to several apps.
func (s *Store) ActiveGrant(ctx context.Context, userID, clientID, appID string) (Grant, error) {
	var g Grant
	err := s.getContext(ctx, &g, qActiveGrant, userID, clientID, appID)
	return g, wrap("active grant", err)
}

// GrantByID returns a grant, revoked or not.
func (s *Store) GrantByID(ctx context.Context, id string) (Grant, error) {
	var g Grant
	err := s.getContext(ctx, &g, qGrantByID, id)
	return g, wrap("grant by id", err)
}

// UpsertGrant records a consent: it creates the live grant of (user, client, app) or sets
// the scopes of the existing one (the caller computes them, see oauth.MergeConsent).
//
// A new grant writes the user.connected webhook event in the same transaction.
func (s *Store) UpsertGrant(ctx context.Context, n NewGrant, now time.Time) (Grant, error) {
	var row struct {
		Grant
		Inserted bool `db:"inserted"`
	}
	scopes := n.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.getContext(ctx, &row, qUpsertGrant, n.UserID, n.ClientID, n.AppID, pq.Array(scopes), now); err != nil {
			return err
		}
		if !row.Inserted {
			return nil
		}
		return tx.emitGrantEvent(ctx, row.ID, EventUserConnected, "", now)
	})
	return row.Grant, wrap("upsert grant", err)
}

// RevokeGrant revokes a grant and every refresh token under it, and announces the
// revocation on RevocationsChannel, all in one transaction: the single place a grant
// is revoked (code reuse, refresh-token reuse, /oauth/revoke, account and admin
// actions). It reports whether this call revoked it (false: already revoked or
// unknown). Called on a Tx, it joins that transaction. The user.disconnected webhook
// event it writes names the reason RevokedBySecurity; see RevokeGrantBy.
func (s *Store) RevokeGrant(ctx context.Context, grantID string, now time.Time) (bool, error) {
	return s.RevokeGrantBy(ctx, grantID, RevokedBySecurity, now)
}

// RevokeGrantBy is RevokeGrant for a revocation by someone (RevokedByUser,
// RevokedByDeveloper, RevokedByAdmin, RevokedByClient): the user.disconnected webhook
// event, written in the same transaction, carries it as its reason.
func (s *Store) RevokeGrantBy(ctx context.Context, grantID, by string, now time.Time) (bool, error) {
	var revoked bool
	err := s.InTx(ctx, func(tx *Tx) error {
		res, err := tx.q.ExecContext(ctx, qRevokeGrant, grantID, now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		revoked = true
		if _, err := tx.q.ExecContext(ctx, qRevokeGrantRefreshTokens, grantID, now); err != nil {
			return err
		}
		// The user's accounts linked at the app's providers end with the grant.
		if err := tx.revokeLinkedOfGrant(ctx, grantID, now); err != nil {
			return err
		}
		if _, err = tx.q.ExecContext(ctx, qNotifyGrantRevoked, grantID); err != nil {
			return err
		}
		return tx.emitGrantEvent(ctx, grantID, EventUserDisconnected, by, now)
	})
	return revoked, wrap("revoke grant", err)
}

// GrantLiveness is what decides whether access tokens of a grant are honoured.
type GrantLiveness struct {
	Exists        bool
	UserID        string `db:"user_id"`
	Revoked       bool   `db:"revoked"`
	UserSuspended bool   `db:"user_suspended"`
}

// Live reports whether the grant exists, is not revoked and its user is not suspended.
func (l GrantLiveness) Live() bool { return l.Exists && !l.Revoked && !l.UserSuspended }

// GrantLiveness looks a grant up for token checks; an unknown (or deleted) grant has
// Exists false and no error.
func (s *Store) GrantLiveness(ctx context.Context, grantID string) (GrantLiveness, error) {
	var l GrantLiveness
	if !isUUID(grantID) {
		return l, nil
	}
	err := wrap("grant liveness", s.getContext(ctx, &l, qGrantLiveness, grantID))
	switch {
	case err == nil:
		l.Exists = true
		return l, nil
	case errors.Is(err, ErrNotFound):
		return GrantLiveness{}, nil
	default:
		return GrantLiveness{}, err
	}
}

// isUUID reports whether s is a UUID in its canonical text form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

package store

import (
	"context"
	"errors"
	"time"

	"github.com/lib/pq"
)

// ErrCodeReused is returned by RedeemCode for a code that was already redeemed: the
// caller revokes the grant it returns (RFC 6749 §4.1.2, RFC 9700 §4.2.4).
var ErrCodeReused = errors.New("store: authorization code reused")

const (
	codeColumns = `c.grant_id, c.client_id, c.user_id, c.redirect_uri, c.redirect_uri_given, c.scopes, c.resource,
		c.code_challenge, c.code_challenge_method, c.nonce, c.auth_time, c.created_at, c.expires_at`

	qInsertCode = `
		INSERT INTO auth_codes (hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_given, scopes, resource,
		                        code_challenge, code_challenge_method, nonce, auth_time, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`
	// Remembered consent (one round trip): the code is stored only when the user's live
	// grant to the client for the app already covers every requested scope.
	//
	// Its commit does not wait for the WAL flush (synchronous_commit off for this
	// statement's transaction only: set_config(…, true) ends with it, so the pooled
	// connection keeps the server's setting). The row is visible to every instance at
	// once; a PostgreSQL crash within the WAL writer's delay (≤ 3 × wal_writer_delay,
	// 600 ms by default) can lose it, and then the client's exchange is invalid_grant and
	// the user signs in again. Nothing else depends on it: the redemption, which enforces
	// single use, commits synchronously, and its flush makes the code row durable too.
	qInsertCodeUnderGrant = `
		WITH async AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true) AS setting)
		INSERT INTO auth_codes (hash, grant_id, client_id, user_id, redirect_uri, redirect_uri_given, scopes, resource,
		                        code_challenge, code_challenge_method, nonce, auth_time, created_at, expires_at)
		SELECT $1, g.id, g.client_id, g.user_id, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
		  FROM async, grants g
		 WHERE g.user_id = $2 AND g.client_id = $3 AND g.app_id = $14 AND g.revoked_at IS NULL AND g.scopes @> $6
		RETURNING grant_id`
	// Redemption is one guarded statement: unused, unexpired, this client's, and its grant
	// still live. Zero rows means the caller looks at why (qCodeState).
	qRedeemCode = `
		UPDATE auth_codes c SET used_at = $3
		  FROM grants g, users u
		 WHERE c.hash = $1 AND c.client_id = $2 AND c.used_at IS NULL AND c.expires_at > $3
		   AND g.id = c.grant_id AND g.revoked_at IS NULL AND u.id = c.user_id
		RETURNING ` + codeColumns + `, g.app_id::text AS app_id, u.email, u.suspended_at IS NOT NULL AS user_suspended`
	// The code as qRedeemCode would take it, read without writing: the token endpoint
	// checks the request against it before redeeming (qRedeemCodeIssuingRefresh).
	qPeekCode = `
		SELECT ` + codeColumns + `, g.app_id::text AS app_id, u.email, u.suspended_at IS NOT NULL AS user_suspended
		  FROM auth_codes c JOIN grants g ON g.id = c.grant_id JOIN users u ON u.id = c.user_id
		 WHERE c.hash = $1 AND c.client_id = $2 AND c.used_at IS NULL AND c.expires_at > $3 AND g.revoked_at IS NULL`
	// A code exchange's only write, one statement and so one commit: the guarded
	// redemption of qRedeemCode (unused, unexpired, this client's, grant live, user not
	// suspended), the grant's first refresh token and the grant's use. Zero rows: nothing
	// is written, and the caller looks at why (qCodeState), as for qRedeemCode.
	qRedeemCodeIssuingRefresh = `
		WITH redeemed AS (
		    UPDATE auth_codes c SET used_at = $3
		      FROM grants g, users u
		     WHERE c.hash = $1 AND c.client_id = $2 AND c.used_at IS NULL AND c.expires_at > $3
		       AND g.id = c.grant_id AND g.revoked_at IS NULL AND u.id = c.user_id AND u.suspended_at IS NULL
		    RETURNING c.grant_id, c.client_id, c.user_id, c.scopes, c.resource, c.auth_time
		), g AS (
		    UPDATE grants SET last_used_at = $3
		     WHERE id = (SELECT grant_id FROM redeemed)
		       AND (last_used_at IS NULL OR last_used_at < $3::timestamptz - interval '1 minute')
		)
		INSERT INTO refresh_tokens (hash, grant_id, client_id, user_id, scopes, resource, auth_time, created_at, expires_at)
		SELECT $4, grant_id, client_id, user_id, scopes, resource, auth_time, $3, $5 FROM redeemed
		RETURNING grant_id`
	qCodeState      = `SELECT grant_id, used_at IS NOT NULL AS used FROM auth_codes WHERE hash = $1`
	qDeleteOldCodes = `DELETE FROM auth_codes WHERE expires_at < $1`
)

// AuthCode is an authorization code's stored binding (the code itself is only hashed).
type AuthCode struct {
	GrantID             string         `db:"grant_id"`
	ClientID            string         `db:"client_id"`
	UserID              string         `db:"user_id"`
	RedirectURI         string         `db:"redirect_uri"`
	RedirectURIGiven    bool           `db:"redirect_uri_given"` // false: omitted, the single registered URI
	Scopes              pq.StringArray `db:"scopes"`
	Resource            string         `db:"resource"`
	CodeChallenge       string         `db:"code_challenge"`
	CodeChallengeMethod string         `db:"code_challenge_method"`
	Nonce               string         `db:"nonce"`
	AuthTime            time.Time      `db:"auth_time"`
	CreatedAt           time.Time      `db:"created_at"`
	ExpiresAt           time.Time      `db:"expires_at"`
}

// NewCode is a code to store. GrantID is ignored by CreateCodeUnderGrant, which finds
// the grant of (UserID, ClientID, AppID); AppID is ignored by CreateCode.
type NewCode struct {
	Hash                []byte
	GrantID             string
	AppID               string
	ClientID            string
	UserID              string
	RedirectURI         string
	RedirectURIGiven    bool
	Scopes              []string
	Resource            string
	CodeChallenge       string
	CodeChallengeMethod string
	Nonce               string
	AuthTime            time.Time
	ExpiresAt           time.Time
}

// RedeemedCode is a code that was just redeemed, with what the token response needs
// about its user.
type RedeemedCode struct {
	AuthCode
	AppID         string `db:"app_id"` // the grant's app
	Email         string `db:"email"`
	UserSuspended bool   `db:"user_suspended"`
}

func (n NewCode) scopes() []string {
	if n.Scopes == nil {
		return []string{}
	}
	return n.Scopes
}

// CreateCode stores a code under an existing grant (after a consent).
func (s *Store) CreateCode(ctx context.Context, n NewCode, now time.Time) error {
	_, err := s.q.ExecContext(ctx, qInsertCode, n.Hash, n.GrantID, n.ClientID, n.UserID, n.RedirectURI, n.RedirectURIGiven,
		pq.Array(n.scopes()), n.Resource, n.CodeChallenge, n.CodeChallengeMethod, n.Nonce, n.AuthTime, now, n.ExpiresAt)
	return wrap("create code", err)
}

// CreateCodeUnderGrant stores a code when the user's live grant to the client covers
// every requested scope (remembered consent) and returns the grant ID; ErrNotFound
// means the user must be asked.
func (s *Store) CreateCodeUnderGrant(ctx context.Context, n NewCode, now time.Time) (string, error) {
	var grantID string
	err := s.getContext(ctx, &grantID, qInsertCodeUnderGrant, n.Hash, n.UserID, n.ClientID, n.RedirectURI, n.RedirectURIGiven,
		pq.Array(n.scopes()), n.Resource, n.CodeChallenge, n.CodeChallengeMethod, n.Nonce, n.AuthTime, now, n.ExpiresAt, n.AppID)
	return grantID, wrap("create code under grant", err)
}

// RedeemCode marks the code with this hash used and returns it, when it is unused,
// unexpired, issued to clientID and its grant is live. A code that was already used is
// ErrCodeReused, returned with the code's GrantID so the caller can revoke the grant;
// every other failure (unknown, expired, another client's, revoked grant) is ErrNotFound.
func (s *Store) RedeemCode(ctx context.Context, hash []byte, clientID string, now time.Time) (RedeemedCode, error) {
	var rc RedeemedCode
	err := s.getContext(ctx, &rc, qRedeemCode, hash, clientID, now)
	if err == nil {
		return rc, nil
	}
	grantID, err := s.whyNotRedeemable(ctx, hash, wrap("redeem code", err))
	return RedeemedCode{AuthCode: AuthCode{GrantID: grantID}}, err
}

// PeekCode returns the code with this hash as RedeemCode would redeem it, without
// redeeming it, with the same errors: ErrCodeReused (returned with the code's GrantID)
// for a code already used, ErrNotFound for every other failure. It writes nothing.
func (s *Store) PeekCode(ctx context.Context, hash []byte, clientID string, now time.Time) (RedeemedCode, error) {
	var rc RedeemedCode
	err := s.getContext(ctx, &rc, qPeekCode, hash, clientID, now)
	if err == nil {
		return rc, nil
	}
	grantID, err := s.whyNotRedeemable(ctx, hash, wrap("peek code", err))
	return RedeemedCode{AuthCode: AuthCode{GrantID: grantID}}, err
}

// RedeemCodeIssuingRefresh redeems the code (as RedeemCode) and stores the grant's first
// refresh token (refreshHash, expiring at refreshExpiry, bound to the code's grant,
// client, user, scopes, resource and auth time) in one statement, so that a code
// exchange commits once. It returns the grant ID. A code redeemed meanwhile is
// ErrCodeReused (with the grant ID, to revoke); anything else that stops it (expired,
// grant revoked, user suspended, another client's) is ErrNotFound; then nothing is written.
func (s *Store) RedeemCodeIssuingRefresh(ctx context.Context, hash []byte, clientID string, refreshHash []byte, refreshExpiry, now time.Time) (string, error) {
	var grantID string
	err := s.getContext(ctx, &grantID, qRedeemCodeIssuingRefresh, hash, clientID, now, refreshHash, refreshExpiry)
	if err == nil {
		return grantID, nil
	}
	return s.whyNotRedeemable(ctx, hash, wrap("redeem code", err))
}

// whyNotRedeemable explains an ErrNotFound of a guarded code statement: ErrCodeReused
// with the code's grant ID when the code exists and was used, else ErrNotFound. Other
// errors pass through.
func (s *Store) whyNotRedeemable(ctx context.Context, hash []byte, err error) (string, error) {
	if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	var state struct {
		GrantID string `db:"grant_id"`
		Used    bool   `db:"used"`
	}
	if err := s.getContext(ctx, &state, qCodeState, hash); err != nil {
		return "", wrap("code state", err)
	}
	if state.Used {
		return state.GrantID, ErrCodeReused
	}
	return "", ErrNotFound
}

// DeleteExpiredCodes removes codes that expired before cutoff; used codes are kept until
// then so that a replay is still recognised.
func (s *Store) DeleteExpiredCodes(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, qDeleteOldCodes, cutoff)
	if err != nil {
		return 0, wrap("delete expired codes", err)
	}
	return res.RowsAffected()
}

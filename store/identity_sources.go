package store

import (
	"context"
	"errors"
	"time"
)

// Identity source kinds (DESIGN.md, "Your users sign in with your own auth").
const (
	SourceEmail  = "email"  // the AuthGPTs email code (the default)
	SourceOIDC   = "oidc"   // an OpenID Connect provider
	SourceGitHub = "github" // GitHub: OAuth 2.0 and its user API
	SourceOwn    = "own"    // the developer's own login page, returning a signed assertion
)

// IssuerGitHub is the issuer of identities from GitHub (its subject is the numeric user ID).
const IssuerGitHub = "https://github.com"

const (
	identitySourceColumns = `app_id, kind, issuer, client_id, client_secret_sealed, scopes, own_login_url,
		own_secret_sealed, own_public_key, updated_at`

	qIdentitySourceByApp = `SELECT ` + identitySourceColumns + ` FROM app_identity_sources WHERE app_id = $1`
	// Saving names the owner, so another developer's app is simply not found. A NULL
	// sealed secret keeps the stored one (the form never shows it again).
	qSaveIdentitySource = `
		INSERT INTO app_identity_sources (app_id, kind, issuer, client_id, client_secret_sealed, scopes,
		                                  own_login_url, own_secret_sealed, own_public_key, updated_at)
		SELECT a.id, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM apps a WHERE a.id = $1 AND a.owner_id = $2
		ON CONFLICT (app_id) DO UPDATE
		   SET kind = EXCLUDED.kind, issuer = EXCLUDED.issuer, client_id = EXCLUDED.client_id,
		       client_secret_sealed = coalesce(EXCLUDED.client_secret_sealed, app_identity_sources.client_secret_sealed),
		       scopes = EXCLUDED.scopes, own_login_url = EXCLUDED.own_login_url,
		       own_secret_sealed = coalesce(EXCLUDED.own_secret_sealed, app_identity_sources.own_secret_sealed),
		       own_public_key = EXCLUDED.own_public_key, updated_at = EXCLUDED.updated_at
		RETURNING ` + identitySourceColumns

	qSignInIdentity = `
		INSERT INTO users (email, issuer, subject, last_login_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (issuer, subject) WHERE issuer <> '' DO UPDATE
		   SET last_login_at = EXCLUDED.last_login_at, email = EXCLUDED.email
		RETURNING ` + userColumns + `, (xmax = 0) AS created`

	qCreateUpstreamLogin = `
		INSERT INTO upstream_logins (state_hash, browser_hash, app_id, provider, return_to, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	// Single use: the row is burnt by the first callback that names it, whatever the
	// outcome of the checks that follow.
	qConsumeUpstreamLogin = `
		UPDATE upstream_logins SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL
		RETURNING browser_hash, coalesce(app_id::text, '') AS app_id, provider, return_to, created_at, expires_at`
	qDeleteExpiredUpstreamLogins = `DELETE FROM upstream_logins WHERE expires_at <= $1`

	qUseOwnAssertion = `
		INSERT INTO own_login_assertions (app_id, jti, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`
	qDeleteExpiredOwnAssertions = `DELETE FROM own_login_assertions WHERE expires_at <= $1`
)

// ErrReplayed is returned when a single-use value (an own-login assertion's jti) was
// already used.
var ErrReplayed = errors.New("store: already used")

// IdentitySource is how an app's end users sign in. Sealed secrets are AES-GCM
// ciphertexts the store never opens (oauth.SealSecret, the app ID as associated data).
type IdentitySource struct {
	AppID              string    `db:"app_id"`
	Kind               string    `db:"kind"`
	Issuer             string    `db:"issuer"`    // OpenID Connect issuer URL
	ClientID           string    `db:"client_id"` // the client registered at the upstream
	ClientSecretSealed []byte    `db:"client_secret_sealed"`
	Scopes             string    `db:"scopes"` // space-separated; "" means the kind's default
	OwnLoginURL        string    `db:"own_login_url"`
	OwnSecretSealed    []byte    `db:"own_secret_sealed"`
	OwnPublicKey       string    `db:"own_public_key"` // a JWK the developer registered (optional)
	UpdatedAt          time.Time `db:"updated_at"`
}

// EmailSource is the identity source of an app that has not chosen one.
func EmailSource(appID string) IdentitySource { return IdentitySource{AppID: appID, Kind: SourceEmail} }

// IdentitySourceByApp returns the app's identity source; the email code when it has none.
func (s *Store) IdentitySourceByApp(ctx context.Context, appID string) (IdentitySource, error) {
	var src IdentitySource
	err := s.getContext(ctx, &src, qIdentitySourceByApp, appID)
	if errors.Is(wrap("", err), ErrNotFound) {
		return EmailSource(appID), nil
	}
	return src, wrap("identity source by app", err)
}

// SaveIdentitySource stores the owner's app's identity source. A nil sealed secret
// keeps the stored one. ErrNotFound when the app is not the owner's.
func (s *Store) SaveIdentitySource(ctx context.Context, ownerID string, src IdentitySource, now time.Time) (IdentitySource, error) {
	var out IdentitySource
	err := s.getContext(ctx, &out, qSaveIdentitySource, src.AppID, ownerID, src.Kind, src.Issuer, src.ClientID,
		nilIfEmpty(src.ClientSecretSealed), src.Scopes, src.OwnLoginURL, nilIfEmpty(src.OwnSecretSealed), src.OwnPublicKey, now)
	return out, wrap("save identity source", err)
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// SignInIdentity records a verified sign-in of the identity (issuer, subject), creating
// its user on first use. email is the upstream's verified email or "" (it replaces the
// one stored: an email the upstream no longer vouches for is dropped). created tells a
// first sign-in from a later one.
func (s *Store) SignInIdentity(ctx context.Context, issuer, subject, email string, now time.Time) (u User, created bool, err error) {
	if issuer == "" || subject == "" {
		return User{}, false, errors.New("store: sign in identity: issuer and subject are required")
	}
	var row struct {
		User
		Created bool `db:"created"`
	}
	err = s.getContext(ctx, &row, qSignInIdentity, email, issuer, subject, now)
	return row.User, row.Created, wrap("sign in identity", err)
}

// NewUpstreamLogin is an outbound sign-in about to start. StateHash and BrowserHash are
// keyed hashes; AppID "" is the portal's own sign-in.
type NewUpstreamLogin struct {
	StateHash   []byte
	BrowserHash []byte
	AppID       string
	Provider    string // the identity source kind, or "portal-oidc" / "portal-github"
	ReturnTo    string
	ExpiresAt   time.Time
}

// UpstreamLogin is a consumed outbound sign-in.
type UpstreamLogin struct {
	BrowserHash []byte    `db:"browser_hash"`
	AppID       string    `db:"app_id"`
	Provider    string    `db:"provider"`
	ReturnTo    string    `db:"return_to"`
	CreatedAt   time.Time `db:"created_at"`
	ExpiresAt   time.Time `db:"expires_at"`
}

// CreateUpstreamLogin stores a started sign-in.
func (s *Store) CreateUpstreamLogin(ctx context.Context, n NewUpstreamLogin, now time.Time) error {
	var appID any
	if n.AppID != "" {
		appID = n.AppID
	}
	_, err := s.q.ExecContext(ctx, qCreateUpstreamLogin, n.StateHash, n.BrowserHash, appID, n.Provider, n.ReturnTo, now, n.ExpiresAt)
	return wrap("create upstream login", err)
}

// ConsumeUpstreamLogin burns the sign-in with that state hash and returns it; the caller
// checks its expiry and browser. ErrNotFound when unknown or already used.
func (s *Store) ConsumeUpstreamLogin(ctx context.Context, stateHash []byte, now time.Time) (UpstreamLogin, error) {
	var l UpstreamLogin
	err := s.getContext(ctx, &l, qConsumeUpstreamLogin, stateHash, now)
	return l, wrap("consume upstream login", err)
}

// UseOwnAssertion records an own-login assertion's jti; ErrReplayed when it was used.
func (s *Store) UseOwnAssertion(ctx context.Context, appID, jti string, expiresAt time.Time) error {
	res, err := s.q.ExecContext(ctx, qUseOwnAssertion, appID, jti, expiresAt)
	if err != nil {
		return wrap("use own assertion", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrReplayed
	}
	return nil
}

// DeleteExpiredUpstreamLogins removes finished or abandoned sign-ins and the jtis of
// expired assertions.
func (s *Store) DeleteExpiredUpstreamLogins(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, qDeleteExpiredUpstreamLogins, now)
	if err != nil {
		return 0, wrap("delete expired upstream logins", err)
	}
	n, _ := res.RowsAffected()
	if _, err := s.q.ExecContext(ctx, qDeleteExpiredOwnAssertions, now); err != nil {
		return n, wrap("delete expired own assertions", err)
	}
	return n, nil
}

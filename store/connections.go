package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Connection statuses (DESIGN.md, "Connections").
const (
	ConnectionActive        = "active"
	ConnectionNeedsReauth   = "needs_reauthorization"
	ConnectionRevoked       = "revoked"
	DeliveryHeader          = "header"   // the gateway adds X-AuthGPTs-Connection-<provider>
	DeliveryExchange        = "exchange" // the API asks /oauth/token (RFC 8693)
	AuthStyleBody           = "body"     // client_secret_post
	AuthStyleHeader         = "header"   // client_secret_basic (Notion requires it)
	ConnectionStateLifetime = 10 * time.Minute
	// maxRevocationAttempts bounds the retries of a revocation at the provider.
	maxRevocationAttempts = 5
)

const (
	providerColumns = `p.id, p.app_id, p.provider, p.preset, p.display_name, p.authorize_url, p.token_url,
		p.revoke_url, p.userinfo_url, p.scopes, p.client_id, p.client_secret_sealed, p.key_id, p.auth_style,
		p.pkce, p.required, p.delivery, p.created_at`
	linkedColumns = `l.id, l.provider_id, l.user_id, l.account_id, l.account_name, l.scopes, l.status, l.key_id,
		l.access_sealed, l.refresh_sealed, l.expires_at, l.last_refresh_at, l.created_at, l.updated_at`

	qVaultKeyID     = `SELECT key_id FROM connection_vault FOR SHARE`
	qInsertProvider = `
		INSERT INTO connection_providers (id, app_id, provider, preset, display_name, authorize_url, token_url,
		       revoke_url, userinfo_url, scopes, client_id, client_secret_sealed, key_id, auth_style, pkce,
		       required, delivery, created_at)
		SELECT $1, a.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18
		  FROM apps a WHERE a.id = $2 AND a.owner_id = $19`
	qProvidersByApp    = `SELECT ` + providerColumns + ` FROM connection_providers p WHERE p.app_id = $1 ORDER BY p.created_at, p.provider`
	qProviderByID      = `SELECT ` + providerColumns + ` FROM connection_providers p WHERE p.id = $1`
	qProviderByAppSlug = `
		SELECT ` + providerColumns + ` FROM connection_providers p JOIN apps a ON a.id = p.app_id
		 WHERE a.slug = $1 AND p.provider = $2`
	qLockOwnedProvider = `
		SELECT ` + providerColumns + ` FROM connection_providers p JOIN apps a ON a.id = p.app_id
		 WHERE a.id = $1 AND a.owner_id = $2 AND p.provider = $3
		   FOR UPDATE OF p`
	// Read under qOwnProvider, so a refresh's new tokens are the ones read.
	qLiveTokensOfProvider = `
		SELECT l.provider_id, l.id AS sealed_row_id, l.key_id, l.access_sealed, l.refresh_sealed
		  FROM linked_accounts l WHERE l.provider_id = $1 AND l.status <> 'revoked'
		   FOR UPDATE`
	// Revocations already queued go with the provider (their rows reference it), claimed
	// by a worker or not (revoking twice does no harm).
	qQueuedRevocationsOfProvider = `
		SELECT provider_id, sealed_row_id, key_id, access_sealed, refresh_sealed
		  FROM connection_revocations WHERE provider_id = $1 FOR UPDATE`
	qDeleteProvider       = `DELETE FROM connection_providers WHERE id = $1`
	qHasHeaderConnections = `SELECT EXISTS (SELECT 1 FROM connection_providers WHERE app_id = $1 AND delivery = 'header')`

	qInsertState = `
		INSERT INTO connection_states (state_hash, provider_id, user_id, session_hash, code_verifier, mode,
		       return_to, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	// Single use: the row is deleted by the one call that takes it.
	qTakeState = `
		DELETE FROM connection_states WHERE state_hash = $1
		RETURNING state_hash, provider_id, user_id, session_hash, code_verifier, mode, return_to, expires_at, created_at`
	qDeleteExpiredStates = `DELETE FROM connection_states WHERE expires_at <= $1`

	qLinkedByProviderUser = `SELECT ` + linkedColumns + ` FROM linked_accounts l WHERE l.provider_id = $1 AND l.user_id = $2`
	qLinkedByID           = `SELECT ` + linkedColumns + ` FROM linked_accounts l WHERE l.id = $1`
	qUpsertLinked         = `
		INSERT INTO linked_accounts (id, provider_id, user_id, account_id, account_name, scopes, status, key_id,
		       access_sealed, refresh_sealed, expires_at, last_refresh_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8, $9, $10, NULL, $11, $11)
		ON CONFLICT (provider_id, user_id) DO UPDATE
		   SET account_id = EXCLUDED.account_id, account_name = EXCLUDED.account_name, scopes = EXCLUDED.scopes,
		       status = 'active', key_id = EXCLUDED.key_id, access_sealed = EXCLUDED.access_sealed,
		       refresh_sealed = EXCLUDED.refresh_sealed, expires_at = EXCLUDED.expires_at,
		       updated_at = EXCLUDED.updated_at
		 WHERE linked_accounts.id = EXCLUDED.id`
	qUpdateLinkedTokens = `
		UPDATE linked_accounts
		   SET key_id = $2, access_sealed = $3, refresh_sealed = $4, expires_at = $5, scopes = $6,
		       last_refresh_at = $7, updated_at = $7, status = 'active'
		 WHERE id = $1 AND status <> 'revoked'`
	// Tokens a refresh obtained for an account revoked or disconnected meanwhile.
	qQueueRevocationOfTokens = `
		INSERT INTO connection_revocations (provider_id, sealed_row_id, key_id, access_sealed, refresh_sealed, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`
	qSetLinkedStatus = `UPDATE linked_accounts SET status = $2, updated_at = $3 WHERE id = $1`
	qLinkedByUser    = `
		SELECT ` + linkedColumns + `, p.provider, p.display_name, a.slug AS app_slug, a.name AS app_name
		  FROM linked_accounts l
		  JOIN connection_providers p ON p.id = l.provider_id
		  JOIN apps a ON a.id = p.app_id
		 WHERE l.user_id = ANY($1::uuid[])
		 ORDER BY a.name, p.display_name`
	// Advisory lock keyed by the linked account: one refresh at a time on every instance.
	qLockLinked = `SELECT pg_advisory_xact_lock(hashtextextended('linked_account:' || $1::text, 0))`
	// A refresh holds its provider's lock shared, a provider's removal holds it alone: the
	// removal waits for refreshes in flight (and reads the tokens they store), and
	// refreshes that start meanwhile wait for it (and find the account gone).
	qShareProvider = `SELECT pg_advisory_xact_lock_shared(hashtextextended('connection_provider:' || $1::text, 0))`
	qOwnProvider   = `SELECT pg_advisory_xact_lock(hashtextextended('connection_provider:' || $1::text, 0))`

	// The outbox of revocations at the provider: the sealed tokens move there in the
	// transaction that ends the link, and any instance sends them after it commits.
	qQueueRevocationOf = `
		INSERT INTO connection_revocations (provider_id, sealed_row_id, key_id, access_sealed, refresh_sealed, created_at)
		SELECT l.provider_id, l.id, l.key_id, l.access_sealed, l.refresh_sealed, $2
		  FROM linked_accounts l WHERE l.id = $1 AND l.status <> 'revoked'`
	qQueueRevocationsOfGrant = `
		INSERT INTO connection_revocations (provider_id, sealed_row_id, key_id, access_sealed, refresh_sealed, created_at)
		SELECT l.provider_id, l.id, l.key_id, l.access_sealed, l.refresh_sealed, $2
		  FROM linked_accounts l
		  JOIN connection_providers p ON p.id = l.provider_id
		  JOIN grants g ON g.app_id = p.app_id AND g.user_id = l.user_id
		 WHERE g.id = $1 AND l.status <> 'revoked'
		RETURNING sealed_row_id`
	qRevokeLinked = `
		UPDATE linked_accounts SET status = 'revoked', access_sealed = '', refresh_sealed = NULL, expires_at = NULL,
		       updated_at = $2
		 WHERE id = ANY($1)`
	qQueueRevocationsOfUser = `
		INSERT INTO connection_revocations (provider_id, sealed_row_id, key_id, access_sealed, refresh_sealed, created_at)
		SELECT l.provider_id, l.id, l.key_id, l.access_sealed, l.refresh_sealed, $2
		  FROM linked_accounts l
		  JOIN connection_providers p ON p.id = l.provider_id
		  JOIN apps a ON a.id = p.app_id
		 WHERE l.user_id = $1 AND l.status <> 'revoked' AND a.owner_id <> $1`
	qDeleteLinkedOfUser = `DELETE FROM linked_accounts l WHERE l.id = $1 AND l.user_id = ANY($2::uuid[])`
	// Claimed with a lease (locked_until), in a statement of its own: every instance
	// claims at once (SKIP LOCKED) and no row stays locked while providers are called.
	qClaimRevocations = `
		UPDATE connection_revocations r SET locked_until = $2
		 WHERE r.id IN (SELECT id FROM connection_revocations
		                 WHERE locked_until IS NULL OR locked_until <= $1
		                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING r.id, r.provider_id, r.sealed_row_id, r.key_id, r.access_sealed, r.refresh_sealed, r.attempts`
	qDeleteRevocation = `DELETE FROM connection_revocations WHERE id = $1`
	// A failed try keeps its lease: the next try is a lease later, not at once.
	qRetryRevocation = `
		UPDATE connection_revocations SET attempts = attempts + 1 WHERE id = $1 AND attempts + 1 < $2`
	qDropRevocation    = `DELETE FROM connection_revocations WHERE id = $1 AND attempts + 1 >= $2`
	qNotifyConnections = `SELECT pg_notify('` + ConnectionsChannel + `', $1)`

	qRotateVault           = `UPDATE connection_vault SET key_id = key_id + 1 RETURNING key_id`
	qSealedProviders       = `SELECT id, key_id, client_secret_sealed FROM connection_providers WHERE key_id < $1 FOR UPDATE`
	qResealProvider        = `UPDATE connection_providers SET key_id = $2, client_secret_sealed = $3 WHERE id = $1`
	qSealedLinked          = `SELECT id, key_id, access_sealed, refresh_sealed FROM linked_accounts WHERE key_id < $1 FOR UPDATE`
	qResealLinked          = `UPDATE linked_accounts SET key_id = $2, access_sealed = $3, refresh_sealed = $4 WHERE id = $1`
	qSealedRevocations     = `SELECT id, sealed_row_id, key_id, access_sealed, refresh_sealed FROM connection_revocations WHERE key_id < $1 FOR UPDATE`
	qResealRevocation      = `UPDATE connection_revocations SET key_id = $2, access_sealed = $3, refresh_sealed = $4 WHERE id = $1`
	qCountSealedBelowVault = `
		SELECT (SELECT count(*) FROM connection_providers WHERE key_id < $1)
		     + (SELECT count(*) FROM linked_accounts WHERE key_id < $1)
		     + (SELECT count(*) FROM connection_revocations WHERE key_id < $1)`
)

// Sealed-value fields: the additional data that binds a ciphertext to its column.
const (
	FieldClientSecret = "client_secret"
	FieldAccess       = "access_token"
	FieldRefresh      = "refresh_token"
)

// ConnectionProvider is a third-party provider an app declared, with the client the
// developer registered there. The client secret stays sealed here.
type ConnectionProvider struct {
	ID                 string         `db:"id"`
	AppID              string         `db:"app_id"`
	Provider           string         `db:"provider"` // slug: header and requested_token_type name
	Preset             string         `db:"preset"`
	DisplayName        string         `db:"display_name"`
	AuthorizeURL       string         `db:"authorize_url"`
	TokenURL           string         `db:"token_url"`
	RevokeURL          string         `db:"revoke_url"`
	UserinfoURL        string         `db:"userinfo_url"`
	Scopes             pq.StringArray `db:"scopes"`
	ClientID           string         `db:"client_id"`
	ClientSecretSealed []byte         `db:"client_secret_sealed"`
	KeyID              int            `db:"key_id"`
	AuthStyle          string         `db:"auth_style"`
	PKCE               bool           `db:"pkce"`
	Required           bool           `db:"required"`
	Delivery           string         `db:"delivery"`
	CreatedAt          time.Time      `db:"created_at"`
}

// LinkedAccount is one user's account at one app's provider; tokens stay sealed.
type LinkedAccount struct {
	ID            string         `db:"id"`
	ProviderID    string         `db:"provider_id"`
	UserID        string         `db:"user_id"`
	AccountID     string         `db:"account_id"`
	AccountName   string         `db:"account_name"`
	Scopes        pq.StringArray `db:"scopes"`
	Status        string         `db:"status"`
	KeyID         int            `db:"key_id"`
	AccessSealed  []byte         `db:"access_sealed"`
	RefreshSealed []byte         `db:"refresh_sealed"`
	ExpiresAt     *time.Time     `db:"expires_at"`
	LastRefreshAt *time.Time     `db:"last_refresh_at"`
	CreatedAt     time.Time      `db:"created_at"`
	UpdatedAt     time.Time      `db:"updated_at"`
}

// LinkedAccountListing is a linked account with its provider and app, for /account.
type LinkedAccountListing struct {
	LinkedAccount
	Provider    string `db:"provider"`
	DisplayName string `db:"display_name"`
	AppSlug     string `db:"app_slug"`
	AppName     string `db:"app_name"`
}

// ConnectionState is a pending outbound authorization request.
type ConnectionState struct {
	StateHash    []byte    `db:"state_hash"`
	ProviderID   string    `db:"provider_id"`
	UserID       string    `db:"user_id"`
	SessionHash  []byte    `db:"session_hash"`
	CodeVerifier string    `db:"code_verifier"`
	Mode         string    `db:"mode"`
	ReturnTo     string    `db:"return_to"`
	ExpiresAt    time.Time `db:"expires_at"`
	CreatedAt    time.Time `db:"created_at"`
}

// PendingRevocation is a token to revoke at its provider.
type PendingRevocation struct {
	ID            int64  `db:"id"`
	ProviderID    string `db:"provider_id"`
	SealedRowID   string `db:"sealed_row_id"`
	KeyID         int    `db:"key_id"`
	AccessSealed  []byte `db:"access_sealed"`
	RefreshSealed []byte `db:"refresh_sealed"`
	Attempts      int    `db:"attempts"`
}

// NewRowID returns a random UUID (v4) for rows whose ID must be known before they are
// written: sealed values take the row ID as additional data.
func NewRowID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// VaultKeyID returns the newest vault key generation. Inside a transaction it holds a
// share lock, so a rotation waits for the values being sealed under the old one.
func (s *Store) VaultKeyID(ctx context.Context) (int, error) {
	var id int
	return id, wrap("vault key id", s.getContext(ctx, &id, qVaultKeyID))
}

// CreateConnectionProvider adds a provider to an app of ownerID; ErrNotFound when the app
// is not theirs, ErrConflict when the app already declares that provider.
func (s *Store) CreateConnectionProvider(ctx context.Context, ownerID string, p ConnectionProvider) error {
	if p.Scopes == nil {
		p.Scopes = []string{}
	}
	return wrap("create connection provider", s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "insert provider", qInsertProvider, p.ID, p.AppID, p.Provider, p.Preset, p.DisplayName,
			p.AuthorizeURL, p.TokenURL, p.RevokeURL, p.UserinfoURL, pq.Array(p.Scopes), p.ClientID, p.ClientSecretSealed,
			p.KeyID, p.AuthStyle, p.PKCE, p.Required, p.Delivery, p.CreatedAt, ownerID); err != nil {
			return err
		}
		return tx.connectionsChanged(ctx, p.AppID)
	}))
}

// connectionsChanged tells every gateway and connections cache that the app's providers
// changed.
func (s *Store) connectionsChanged(ctx context.Context, appID string) error {
	if _, err := s.q.ExecContext(ctx, qNotifyConnections, "app:"+appID); err != nil {
		return err
	}
	return s.notifyChange(ctx, ChannelAppChanged, appID)
}

// DeleteConnectionProvider removes an app's provider; its linked accounts and their
// queued revocations go with it (they reference the provider). It returns the provider
// and those tokens (the live accounts' and the queued ones), still sealed, for the
// caller to revoke at the provider after the commit (connections.Service.RevokeRemoved).
func (s *Store) DeleteConnectionProvider(ctx context.Context, ownerID, appID, provider string) (ConnectionProvider, []PendingRevocation, error) {
	var p ConnectionProvider
	var tokens []PendingRevocation
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.getContext(ctx, &p, qLockOwnedProvider, appID, ownerID, provider); err != nil {
			return err
		}
		// The queue's rows first (the worker may be sending some: wait for it before
		// refreshes have to wait for this), then the refreshes' lock, then the accounts.
		var queued []PendingRevocation
		if err := tx.selectContext(ctx, &queued, qQueuedRevocationsOfProvider, p.ID); err != nil {
			return err
		}
		if _, err := tx.q.ExecContext(ctx, qOwnProvider, p.ID); err != nil {
			return err
		}
		if err := tx.selectContext(ctx, &tokens, qLiveTokensOfProvider, p.ID); err != nil {
			return err
		}
		tokens = append(tokens, queued...)
		if err := tx.execOne(ctx, "delete connection provider", qDeleteProvider, p.ID); err != nil {
			return err
		}
		return tx.connectionsChanged(ctx, appID)
	})
	if err != nil {
		return ConnectionProvider{}, nil, wrap("delete connection provider", err)
	}
	return p, tokens, nil
}

// ConnectionProvidersByApp lists an app's providers.
func (s *Store) ConnectionProvidersByApp(ctx context.Context, appID string) ([]ConnectionProvider, error) {
	var out []ConnectionProvider
	return out, wrap("connection providers by app", s.selectContext(ctx, &out, qProvidersByApp, appID))
}

// ConnectionProviderByID loads one provider.
func (s *Store) ConnectionProviderByID(ctx context.Context, id string) (ConnectionProvider, error) {
	var p ConnectionProvider
	return p, wrap("connection provider by id", s.getContext(ctx, &p, qProviderByID, id))
}

// ConnectionProviderByAppSlug loads the provider named provider of the app with slug.
func (s *Store) ConnectionProviderByAppSlug(ctx context.Context, slug, provider string) (ConnectionProvider, error) {
	var p ConnectionProvider
	return p, wrap("connection provider by app slug", s.getContext(ctx, &p, qProviderByAppSlug, slug, provider))
}

// HasHeaderConnections reports whether an app declares a provider delivered by header.
func (s *Store) HasHeaderConnections(ctx context.Context, appID string) (bool, error) {
	var ok bool
	return ok, wrap("has header connections", s.getContext(ctx, &ok, qHasHeaderConnections, appID))
}

// CreateConnectionState records a pending outbound authorization request.
func (s *Store) CreateConnectionState(ctx context.Context, st ConnectionState) error {
	_, err := s.q.ExecContext(ctx, qInsertState, st.StateHash, st.ProviderID, st.UserID, st.SessionHash,
		st.CodeVerifier, st.Mode, st.ReturnTo, st.ExpiresAt, st.CreatedAt)
	return wrap("create connection state", err)
}

// TakeConnectionState deletes and returns the state with that hash: each state is used
// at most once, whatever the outcome. The caller checks expiry and its binding.
func (s *Store) TakeConnectionState(ctx context.Context, hash []byte) (ConnectionState, error) {
	var st ConnectionState
	return st, wrap("take connection state", s.getContext(ctx, &st, qTakeState, hash))
}

// DeleteExpiredConnectionStates removes abandoned authorization requests.
func (s *Store) DeleteExpiredConnectionStates(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, qDeleteExpiredStates, now)
	if err != nil {
		return 0, wrap("delete expired connection states", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// LinkedAccount loads a user's account at a provider.
func (s *Store) LinkedAccount(ctx context.Context, providerID, userID string) (LinkedAccount, error) {
	var l LinkedAccount
	return l, wrap("linked account", s.getContext(ctx, &l, qLinkedByProviderUser, providerID, userID))
}

// LinkedAccountByID loads a linked account.
func (s *Store) LinkedAccountByID(ctx context.Context, id string) (LinkedAccount, error) {
	var l LinkedAccount
	return l, wrap("linked account by id", s.getContext(ctx, &l, qLinkedByID, id))
}

// SaveLinkedAccount creates or replaces a user's account at a provider with new
// tokens. l.ID must be the existing row's ID when there is one (the values were sealed
// for it); ErrConflict when the provider account is linked to another user of the app.
func (s *Store) SaveLinkedAccount(ctx context.Context, l LinkedAccount, now time.Time) error {
	if l.Scopes == nil {
		l.Scopes = []string{}
	}
	return wrap("save linked account", s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "upsert linked account", qUpsertLinked, l.ID, l.ProviderID, l.UserID, l.AccountID,
			l.AccountName, pq.Array(l.Scopes), l.KeyID, l.AccessSealed, l.RefreshSealed, l.ExpiresAt, now); err != nil {
			return err
		}
		if err := tx.emitConnectionEvents(ctx, []string{l.ID}, EventConnectionLinked, "", now); err != nil {
			return err
		}
		_, err := tx.q.ExecContext(ctx, qNotifyConnections, "account:"+l.ID)
		return err
	}))
}

// LockLinkedAccount takes the advisory lock of a linked account (and its provider's,
// shared) until the transaction ends (call it on a Tx), and re-reads the row under it.
func (s *Store) LockLinkedAccount(ctx context.Context, providerID, id string) (LinkedAccount, error) {
	if _, err := s.q.ExecContext(ctx, qShareProvider, providerID); err != nil {
		return LinkedAccount{}, wrap("lock linked account", err)
	}
	if _, err := s.q.ExecContext(ctx, qLockLinked, id); err != nil {
		return LinkedAccount{}, wrap("lock linked account", err)
	}
	return s.LinkedAccountByID(ctx, id)
}

// UpdateLinkedTokens stores refreshed tokens (and marks the account active);
// ErrNotFound when the account was revoked or deleted meanwhile.
func (s *Store) UpdateLinkedTokens(ctx context.Context, l LinkedAccount, now time.Time) error {
	if l.Scopes == nil {
		l.Scopes = []string{}
	}
	return wrap("update linked tokens", s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "update linked tokens", qUpdateLinkedTokens, l.ID, l.KeyID, l.AccessSealed,
			l.RefreshSealed, l.ExpiresAt, pq.Array(l.Scopes), now); err != nil {
			return err
		}
		_, err := tx.q.ExecContext(ctx, qNotifyConnections, "account:"+l.ID)
		return err
	}))
}

// QueueRevocationOfTokens queues l's tokens (sealed for l.ID) for revocation at its
// provider: a refresh whose account was revoked or disconnected while it ran.
func (s *Store) QueueRevocationOfTokens(ctx context.Context, l LinkedAccount, now time.Time) error {
	_, err := s.q.ExecContext(ctx, qQueueRevocationOfTokens, l.ProviderID, l.ID, l.KeyID, l.AccessSealed, l.RefreshSealed, now)
	return wrap("queue revocation of tokens", err)
}

// SetLinkedStatus sets a linked account's status (needs_reauthorization after a failed
// refresh).
func (s *Store) SetLinkedStatus(ctx context.Context, id, status string, now time.Time) error {
	return wrap("set linked status", s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "set linked status", qSetLinkedStatus, id, status, now); err != nil {
			return err
		}
		_, err := tx.q.ExecContext(ctx, qNotifyConnections, "account:"+id)
		return err
	}))
}

// LinkedAccountsByUser lists the linked accounts of the users (one person's linked
// identities) with their providers and apps.
func (s *Store) LinkedAccountsByUser(ctx context.Context, userIDs []string) ([]LinkedAccountListing, error) {
	var out []LinkedAccountListing
	return out, wrap("linked accounts by user", s.selectContext(ctx, &out, qLinkedByUser, pq.Array(userIDs)))
}

// DisconnectLinkedAccount deletes a linked account of one of the users (one person's
// linked identities), queueing its tokens for revocation at the provider in the same
// transaction. ErrNotFound when it is not theirs.
func (s *Store) DisconnectLinkedAccount(ctx context.Context, userIDs []string, id string, now time.Time) error {
	return wrap("disconnect linked account", s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, qQueueRevocationOf+` AND l.user_id = ANY($3::uuid[])`, id, now, pq.Array(userIDs)); err != nil {
			return err
		}
		if err := tx.emitConnectionEvents(ctx, []string{id}, EventConnectionRevoked, RevokedByUser, now); err != nil {
			return err
		}
		if err := tx.execOne(ctx, "delete linked account", qDeleteLinkedOfUser, id, pq.Array(userIDs)); err != nil {
			return err
		}
		_, err := tx.q.ExecContext(ctx, qNotifyConnections, "account:"+id)
		return err
	}))
}

// revokeLinkedOfGrant ends the linked accounts a grant's user holds at the grant's
// app's providers: their tokens go to the revocation outbox and the rows read revoked.
// It runs inside RevokeGrant's transaction.
func (s *Store) revokeLinkedOfGrant(ctx context.Context, grantID string, now time.Time) error {
	var ids []string
	if err := s.selectContext(ctx, &ids, qQueueRevocationsOfGrant, grantID, now); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.q.ExecContext(ctx, qRevokeLinked, pq.Array(ids), now); err != nil {
		return err
	}
	if err := s.emitConnectionEvents(ctx, ids, EventConnectionRevoked, "grant_revoked", now); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := s.q.ExecContext(ctx, qNotifyConnections, "account:"+id); err != nil {
			return err
		}
	}
	return nil
}

// queueRevocationsOfUser moves a user's tokens at other developers' apps to the outbox
// before the account is deleted (the apps the user owns go with the account, and
// their providers' clients with them). It runs inside DeleteUser's transaction.
func (s *Store) queueRevocationsOfUser(ctx context.Context, userID string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, qQueueRevocationsOfUser, userID, now)
	return err
}

// RevocationLease is how long a claimed revocation is the claimer's: long enough for
// its provider calls (two, 10 s each at most), after which another instance may take it.
const RevocationLease = 2 * time.Minute

// PendingRevocations claims up to limit queued revocations for RevocationLease (SKIP
// LOCKED: instances share the queue) and runs fn on each, outside any transaction. fn
// reports whether the provider accepted (or the revocation cannot succeed); accepted
// rows are deleted, others tried again once their lease ends, up to
// maxRevocationAttempts. It returns how many were done and how many it claimed.
func (s *Store) PendingRevocations(ctx context.Context, now time.Time, limit int, fn func(PendingRevocation) bool) (done, claimed int, err error) {
	var rows []PendingRevocation
	if err := s.selectContext(ctx, &rows, qClaimRevocations, now, now.Add(RevocationLease), limit); err != nil {
		return 0, 0, wrap("claim revocations", err)
	}
	for _, r := range rows {
		if fn(r) {
			done++
			if _, err := s.q.ExecContext(ctx, qDeleteRevocation, r.ID); err != nil {
				return done, len(rows), wrap("delete revocation", err)
			}
			continue
		}
		if _, err := s.q.ExecContext(ctx, qRetryRevocation, r.ID, maxRevocationAttempts); err != nil {
			return done, len(rows), wrap("retry revocation", err)
		}
		if _, err := s.q.ExecContext(ctx, qDropRevocation, r.ID, maxRevocationAttempts); err != nil {
			return done, len(rows), wrap("drop revocation", err)
		}
	}
	return done, len(rows), nil
}

// Reseal re-encrypts one sealed value from key generation from to generation to;
// rowID and field are its additional data.
type Reseal func(from, to int, sealed []byte, rowID, field string) ([]byte, error)

// RotateVaultKey makes a new vault key generation the newest and re-seals every
// provider secret, linked-account token and queued revocation under it, in one
// transaction. It returns the new key ID and how many rows it re-sealed.
func (s *Store) RotateVaultKey(ctx context.Context, reseal Reseal) (int, int, error) {
	var newID, n int
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.getContext(ctx, &newID, qRotateVault); err != nil {
			return err
		}
		var provs []struct {
			ID     string `db:"id"`
			KeyID  int    `db:"key_id"`
			Secret []byte `db:"client_secret_sealed"`
		}
		if err := tx.selectContext(ctx, &provs, qSealedProviders, newID); err != nil {
			return err
		}
		for _, p := range provs {
			sec, err := reseal(p.KeyID, newID, p.Secret, p.ID, FieldClientSecret)
			if err != nil {
				return fmt.Errorf("provider %s: %w", p.ID, err)
			}
			if _, err := tx.q.ExecContext(ctx, qResealProvider, p.ID, newID, sec); err != nil {
				return err
			}
			n++
		}
		type sealedPair struct {
			ID      string `db:"id"`
			RowID   string `db:"sealed_row_id"`
			KeyID   int    `db:"key_id"`
			Access  []byte `db:"access_sealed"`
			Refresh []byte `db:"refresh_sealed"`
		}
		resealPair := func(p sealedPair, rowID string) ([]byte, []byte, error) {
			var access, refresh []byte
			var err error
			if len(p.Access) > 0 {
				if access, err = reseal(p.KeyID, newID, p.Access, rowID, FieldAccess); err != nil {
					return nil, nil, err
				}
			} else {
				access = []byte{}
			}
			if p.Refresh != nil {
				if refresh, err = reseal(p.KeyID, newID, p.Refresh, rowID, FieldRefresh); err != nil {
					return nil, nil, err
				}
			}
			return access, refresh, nil
		}
		var linked []sealedPair
		if err := tx.selectContext(ctx, &linked, qSealedLinked, newID); err != nil {
			return err
		}
		for _, l := range linked {
			access, refresh, err := resealPair(l, l.ID)
			if err != nil {
				return fmt.Errorf("linked account %s: %w", l.ID, err)
			}
			if _, err := tx.q.ExecContext(ctx, qResealLinked, l.ID, newID, access, refresh); err != nil {
				return err
			}
			n++
		}
		var queued []sealedPair
		if err := tx.selectContext(ctx, &queued, qSealedRevocations, newID); err != nil {
			return err
		}
		for _, r := range queued {
			access, refresh, err := resealPair(r, r.RowID)
			if err != nil {
				return fmt.Errorf("queued revocation %s: %w", r.ID, err)
			}
			if _, err := tx.q.ExecContext(ctx, qResealRevocation, r.ID, newID, access, refresh); err != nil {
				return err
			}
			n++
		}
		_, err := tx.q.ExecContext(ctx, qNotifyConnections, "vault")
		return err
	})
	return newID, n, wrap("rotate vault key", err)
}

// SealedBelowVaultKey counts values still sealed under an older generation than keyID.
func (s *Store) SealedBelowVaultKey(ctx context.Context, keyID int) (int, error) {
	var n int
	return n, wrap("sealed below vault key", s.getContext(ctx, &n, qCountSealedBelowVault, keyID))
}

const qConnectableByUser = `
	SELECT ` + providerColumns + `, a.slug AS app_slug, a.name AS app_name
	  FROM connection_providers p
	  JOIN apps a ON a.id = p.app_id
	 WHERE EXISTS (SELECT 1 FROM grants g WHERE g.app_id = p.app_id AND g.user_id = $1 AND g.revoked_at IS NULL)
	   AND NOT EXISTS (SELECT 1 FROM linked_accounts l WHERE l.provider_id = p.id AND l.user_id = $1)
	 ORDER BY a.name, p.display_name`

// ConnectableProvider is a provider of an app the user allowed, not linked yet.
type ConnectableProvider struct {
	ConnectionProvider
	AppSlug string `db:"app_slug"`
	AppName string `db:"app_name"`
}

// ConnectableProviders lists the providers of the apps a user has allowed at which the
// user has no linked account yet.
func (s *Store) ConnectableProviders(ctx context.Context, userID string) ([]ConnectableProvider, error) {
	var out []ConnectableProvider
	return out, wrap("connectable providers", s.selectContext(ctx, &out, qConnectableByUser, userID))
}

const qLinkedCounts = `
	SELECT l.provider_id, count(*) AS n FROM linked_accounts l JOIN connection_providers p ON p.id = l.provider_id
	 WHERE p.app_id = $1 AND l.status <> 'revoked' GROUP BY l.provider_id`

// LinkedCounts counts the live linked accounts of each of an app's providers.
func (s *Store) LinkedCounts(ctx context.Context, appID string) (map[string]int, error) {
	var rows []struct {
		ProviderID string `db:"provider_id"`
		N          int    `db:"n"`
	}
	if err := s.selectContext(ctx, &rows, qLinkedCounts, appID); err != nil {
		return nil, wrap("linked counts", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.ProviderID] = r.N
	}
	return out, nil
}

const qMissingRequired = `
	SELECT ` + providerColumns + ` FROM connection_providers p
	 WHERE p.app_id = $1 AND p.required
	   AND NOT EXISTS (SELECT 1 FROM linked_accounts l WHERE l.provider_id = p.id AND l.user_id = $2 AND l.status = 'active')
	 ORDER BY p.created_at, p.provider`

// MissingRequiredConnections lists the app's required providers at which the user has
// no active linked account: the consent page asks to connect them before Allow.
func (s *Store) MissingRequiredConnections(ctx context.Context, appID, userID string) ([]ConnectionProvider, error) {
	var out []ConnectionProvider
	return out, wrap("missing required connections", s.selectContext(ctx, &out, qMissingRequired, appID, userID))
}

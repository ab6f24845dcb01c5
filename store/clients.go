package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/lib/pq"
)

// Client kinds.
const (
	ClientKindGPT     = "gpt"     // confidential, secret required, PKCE optional (ChatGPT sends none)
	ClientKindPublic  = "public"  // no secret, PKCE S256 required (MCP, native apps)
	ClientKindService = "service" // client_credentials only
)

// Client origins.
const (
	ClientOriginPortal           = "portal"
	ClientOriginCLI              = "cli"
	ClientOriginRegistration     = "registration"
	ClientOriginMetadataDocument = "metadata_document"
)

const (
	// app_id is NULL for registered and metadata-document clients (migration 00008):
	// they read as "".
	clientColumns = `c.id, coalesce(c.app_id::text, '') AS app_id, c.name, c.kind, c.redirect_uris, c.origin, c.suspended_at,
		c.suspended_reason, c.created_at, c.updated_at, c.last_used_at, c.token_endpoint_auth_method,
		c.metadata, c.metadata_expires_at`

	qInsertClient = `
		INSERT INTO clients (id, app_id, name, kind, redirect_uris, origin, created_at, updated_at)
		VALUES ($1, NULLIF($2, '')::uuid, $3, $4, $5, $6, $7, $7)`
	qInsertSecret = `
		INSERT INTO client_secrets (client_id, secret_hash, hint, created_at) VALUES ($1, $2, $3, $4)`
	qClientByID         = `SELECT ` + clientColumns + ` FROM clients c WHERE c.id = $1`
	qClientsByApp       = `SELECT ` + clientColumns + ` FROM clients c WHERE c.app_id = $1 ORDER BY c.created_at, c.id`
	qClientByIDForOwner = `
		SELECT ` + clientColumns + ` FROM clients c JOIN apps a ON a.id = c.app_id
		 WHERE c.id = $1 AND a.owner_id = $2`
	qActiveSecrets = `
		SELECT id, client_id, secret_hash, hint, created_at, expires_at FROM client_secrets
		 WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $2)
		 ORDER BY created_at DESC`
	// Rotation: the current secret gets an expiry (the overlap window); a shorter existing
	// expiry is kept, so rotating twice never extends an old secret's life.
	qExpireCurrentSecrets = `
		UPDATE client_secrets SET expires_at = LEAST(coalesce(expires_at, 'infinity'), $2)
		 WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $2)`
	qDeleteDeadSecrets = `DELETE FROM client_secrets WHERE client_id = $1 AND expires_at <= $2`

	// Developer edits name the owner and the app of the URL: a client of another app or
	// of another developer is not found.
	qClientForApp = `
		SELECT ` + clientColumns + ` FROM clients c JOIN apps a ON a.id = c.app_id
		 WHERE c.id = $1 AND c.app_id = $2 AND a.owner_id = $3`
	qLockClientForApp = qClientForApp + ` FOR UPDATE OF c`
	qSetRedirectURIs  = `UPDATE clients SET redirect_uris = $2, updated_at = $3 WHERE id = $1`
	qRenameClient     = `
		UPDATE clients c SET name = $4, updated_at = $5
		  FROM apps a
		 WHERE a.id = c.app_id AND c.id = $1 AND c.app_id = $2 AND a.owner_id = $3
		RETURNING ` + clientColumns
	qDeleteClient = `
		DELETE FROM clients c USING apps a
		 WHERE a.id = c.app_id AND c.id = $1 AND c.app_id = $2 AND a.owner_id = $3`
)

// MaxRedirectURIs bounds the redirect URIs of one client.
const MaxRedirectURIs = 20

// ErrTooManyRedirectURIs is returned when a client would get more than MaxRedirectURIs.
var ErrTooManyRedirectURIs = errors.New("store: too many redirect URIs")

// Client is an OAuth client of an app.
type Client struct {
	ID              string         `db:"id"`
	AppID           string         `db:"app_id"`
	Name            string         `db:"name"`
	Kind            string         `db:"kind"`
	RedirectURIs    pq.StringArray `db:"redirect_uris"`
	Origin          string         `db:"origin"`
	SuspendedAt     *time.Time     `db:"suspended_at"`
	SuspendedReason string         `db:"suspended_reason"`
	CreatedAt       time.Time      `db:"created_at"`
	UpdatedAt       time.Time      `db:"updated_at"`
	LastUsedAt      *time.Time     `db:"last_used_at"`
	// AuthMethod is the registered token_endpoint_auth_method of a registered or
	// metadata-document client; "" for portal and CLI clients (their kind decides).
	AuthMethod string `db:"token_endpoint_auth_method"`
	// Metadata is the RFC 7591 client metadata (JSON) a registered client registered with,
	// or the last fetched metadata document; {} for portal and CLI clients.
	Metadata []byte `db:"metadata"`
	// MetadataExpiresAt is when a metadata document must be fetched again.
	MetadataExpiresAt *time.Time `db:"metadata_expires_at"`
}

// IsConfidential reports whether the client authenticates at the token endpoint (with a
// secret, or with a private_key_jwt assertion).
func (c Client) IsConfidential() bool { return c.Kind != ClientKindPublic }

// HasApp reports whether the client belongs to an app. Registered and metadata-document
// clients do not: the app is bound per authorization request, from its resource.
func (c Client) HasApp() bool { return c.AppID != "" }

// IsMCP reports whether the client came from dynamic registration or a client ID
// metadata document.
func (c Client) IsMCP() bool {
	return c.Origin == ClientOriginRegistration || c.Origin == ClientOriginMetadataDocument
}

// IsSuspended reports whether an admin suspended the client.
func (c Client) IsSuspended() bool { return c.SuspendedAt != nil }

// ClientSecret is one stored secret hash; Hint is its last characters for display.
type ClientSecret struct {
	ID        int64      `db:"id"`
	ClientID  string     `db:"client_id"`
	Hash      []byte     `db:"secret_hash"`
	Hint      string     `db:"hint"`
	CreatedAt time.Time  `db:"created_at"`
	ExpiresAt *time.Time `db:"expires_at"`
}

// NewClient is a client to create. ID, SecretHash and SecretHint are generated by the
// caller (oauth.NewClientID, a keyed hash of oauth.NewToken); public clients have none.
type NewClient struct {
	ID           string
	AppID        string
	Name         string
	Kind         string
	RedirectURIs []string
	Origin       string
	SecretHash   []byte
	SecretHint   string
}

// CreateClient stores a client and, for confidential kinds, its first secret.
func (s *Store) CreateClient(ctx context.Context, n NewClient, now time.Time) (Client, error) {
	if n.Origin == "" {
		n.Origin = ClientOriginPortal
	}
	if n.RedirectURIs == nil {
		n.RedirectURIs = []string{}
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, qInsertClient, n.ID, n.AppID, n.Name, n.Kind, pq.Array(n.RedirectURIs), n.Origin, now); err != nil {
			return err
		}
		if len(n.SecretHash) > 0 {
			if _, err := tx.q.ExecContext(ctx, qInsertSecret, n.ID, n.SecretHash, n.SecretHint, now); err != nil {
				return err
			}
		}
		// A cache may remember that this ID did not exist.
		return tx.notifyChange(ctx, ChannelClientChanged, n.ID)
	})
	if err != nil {
		return Client{}, wrap("create client", err)
	}
	return s.ClientByID(ctx, n.ID)
}

// ClientByID returns a client for the OAuth endpoints (not owner-scoped).
func (s *Store) ClientByID(ctx context.Context, id string) (Client, error) {
	var c Client
	err := s.getContext(ctx, &c, qClientByID, id)
	return c, wrap("client by id", err)
}

// ClientByIDForOwner returns a client of one of the owner's apps, else ErrNotFound.
func (s *Store) ClientByIDForOwner(ctx context.Context, ownerID, id string) (Client, error) {
	var c Client
	err := s.getContext(ctx, &c, qClientByIDForOwner, id, ownerID)
	return c, wrap("client by id for owner", err)
}

// ClientsByApp lists an app's clients, oldest first.
func (s *Store) ClientsByApp(ctx context.Context, appID string) ([]Client, error) {
	var out []Client
	err := s.selectContext(ctx, &out, qClientsByApp, appID)
	return out, wrap("clients by app", err)
}

// ActiveSecrets returns the client's secrets that still work at now: the current one
// and any old one inside its rotation overlap window.
func (s *Store) ActiveSecrets(ctx context.Context, clientID string, now time.Time) ([]ClientSecret, error) {
	var out []ClientSecret
	err := s.selectContext(ctx, &out, qActiveSecrets, clientID, now)
	return out, wrap("active secrets", err)
}

// RotateClientSecret adds a new current secret; the previous ones keep working until
// now+overlap (zero overlap: they stop at once).
func (s *Store) RotateClientSecret(ctx context.Context, clientID string, newHash []byte, hint string, overlap time.Duration, now time.Time) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, qExpireCurrentSecrets, clientID, now.Add(overlap)); err != nil {
			return err
		}
		if _, err := tx.q.ExecContext(ctx, qDeleteDeadSecrets, clientID, now); err != nil {
			return err
		}
		if _, err := tx.q.ExecContext(ctx, qInsertSecret, clientID, newHash, hint, now); err != nil {
			return err
		}
		var n int
		if err := tx.getContext(ctx, &n, qEmitSecretRotated, clientID, now.Add(overlap), now); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err // no row: a client without an app (MCP) has no webhooks
		}
		return tx.notifyChange(ctx, ChannelClientChanged, clientID)
	})
	return wrap("rotate client secret", err)
}

// ClientForApp returns a client of the owner's app; a client of another app or of
// another developer is ErrNotFound.
func (s *Store) ClientForApp(ctx context.Context, ownerID, appID, clientID string) (Client, error) {
	var c Client
	err := s.getContext(ctx, &c, qClientForApp, clientID, appID, ownerID)
	return c, wrap("client for app", err)
}

// LockClient is ClientForApp that also locks the client row until the transaction
// ends; call it inside InTx before a read-modify-write such as a secret rotation.
func (s *Store) LockClient(ctx context.Context, ownerID, appID, clientID string) (Client, error) {
	var c Client
	err := s.getContext(ctx, &c, qLockClientForApp, clientID, appID, ownerID)
	return c, wrap("lock client", err)
}

// AddRedirectURIs appends to the owner's client the URIs it does not have yet, in
// order, and returns the client with the ones that were new. The caller validates each
// URI (oauth.ValidateRedirectURI). Going over MaxRedirectURIs is ErrTooManyRedirectURIs
// and changes nothing.
func (s *Store) AddRedirectURIs(ctx context.Context, ownerID, appID, clientID string, uris []string, now time.Time) (Client, []string, error) {
	var out Client
	var added []string
	err := s.InTx(ctx, func(tx *Tx) error {
		c, err := tx.LockClient(ctx, ownerID, appID, clientID)
		if err != nil {
			return err
		}
		next := slices.Clone([]string(c.RedirectURIs))
		for _, u := range uris {
			if !slices.Contains(next, u) {
				next = append(next, u)
				added = append(added, u)
			}
		}
		if len(next) > MaxRedirectURIs {
			return ErrTooManyRedirectURIs
		}
		if len(added) > 0 {
			if err := tx.setRedirectURIs(ctx, clientID, next, now); err != nil {
				return err
			}
		}
		out, err = tx.ClientByID(ctx, clientID)
		return err
	})
	if errors.Is(err, ErrTooManyRedirectURIs) {
		return Client{}, nil, ErrTooManyRedirectURIs
	}
	return out, added, wrap("add redirect uris", err)
}

// RemoveRedirectURI removes one redirect URI from the owner's client; a URI the client
// does not have is ErrNotFound.
func (s *Store) RemoveRedirectURI(ctx context.Context, ownerID, appID, clientID, uri string, now time.Time) (Client, error) {
	var out Client
	err := s.InTx(ctx, func(tx *Tx) error {
		c, err := tx.LockClient(ctx, ownerID, appID, clientID)
		if err != nil {
			return err
		}
		i := slices.Index(c.RedirectURIs, uri)
		if i < 0 {
			return ErrNotFound
		}
		if err := tx.setRedirectURIs(ctx, clientID, slices.Delete(slices.Clone([]string(c.RedirectURIs)), i, i+1), now); err != nil {
			return err
		}
		out, err = tx.ClientByID(ctx, clientID)
		return err
	})
	return out, wrap("remove redirect uri", err)
}

func (s *Store) setRedirectURIs(ctx context.Context, clientID string, uris []string, now time.Time) error {
	if _, err := s.q.ExecContext(ctx, qSetRedirectURIs, clientID, pq.Array(uris), now); err != nil {
		return err
	}
	return s.notifyChange(ctx, ChannelClientChanged, clientID)
}

// RenameClient renames the owner's client.
func (s *Store) RenameClient(ctx context.Context, ownerID, appID, clientID, name string, now time.Time) (Client, error) {
	var c Client
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.getContext(ctx, &c, qRenameClient, clientID, appID, ownerID, name, now); err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelClientChanged, clientID)
	})
	return c, wrap("rename client", err)
}

// DeleteClient deletes the owner's client with its secrets and grants (the schema
// cascades), so every token issued to it stops working.
func (s *Store) DeleteClient(ctx context.Context, ownerID, appID, clientID string) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		var ended int
		if err := tx.getContext(ctx, &ended, qEmitClientGrantsEnded, clientID, appID, RevokedByDeveloper, EventUserDisconnected); err != nil {
			return err
		}
		if err := tx.execOne(ctx, "delete client", qDeleteClient, clientID, appID, ownerID); err != nil {
			return err
		}
		if err := tx.notifyChange(ctx, RevocationsChannel, TargetClient+":"+clientID); err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelClientChanged, clientID)
	})
	return wrap("delete client", err)
}

package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lib/pq"
)

// Clients of MCP hosts (issue 7): dynamically registered clients (RFC 7591, managed with
// RFC 7592) and clients described by a client ID metadata document. Neither belongs to an
// app: the app is bound per authorization request from its resource and recorded on the
// grant (migration 00008).

const (
	qInsertRegistration = `
		INSERT INTO clients (id, app_id, name, kind, redirect_uris, origin, metadata, token_endpoint_auth_method,
		                     registration_token_hash, created_at, updated_at)
		VALUES ($1, NULL, $2, $3, $4, '` + ClientOriginRegistration + `', $5, $6, $7, $8, $8)`
	qRegistrationByToken = `
		SELECT ` + clientColumns + ` FROM clients c
		 WHERE c.id = $1 AND c.registration_token_hash = $2 AND c.origin = '` + ClientOriginRegistration + `'`
	qUpdateRegistration = `
		UPDATE clients c SET name = $3, redirect_uris = $4, metadata = $5, token_endpoint_auth_method = $7, updated_at = $6
		 WHERE c.id = $1 AND c.registration_token_hash = $2 AND c.origin = '` + ClientOriginRegistration + `'
		RETURNING ` + clientColumns
	qDeleteRegistration = `
		DELETE FROM clients c
		 WHERE c.id = $1 AND c.registration_token_hash = $2 AND c.origin = '` + ClientOriginRegistration + `'`

	// A metadata document is fetched again when it expires; the row is its cache, shared
	// by every instance. The ID is the document's URL, so it never collides with a
	// generated client ID, and a row of another origin is never overwritten.
	qUpsertDocumentClient = `
		INSERT INTO clients AS c (id, app_id, name, kind, redirect_uris, origin, metadata, token_endpoint_auth_method,
		                          metadata_expires_at, created_at, updated_at)
		VALUES ($1, NULL, $2, $3, $4, '` + ClientOriginMetadataDocument + `', $5, $6, $7, $8, $8)
		ON CONFLICT (id) DO UPDATE
		   SET name = EXCLUDED.name, kind = EXCLUDED.kind, redirect_uris = EXCLUDED.redirect_uris,
		       metadata = EXCLUDED.metadata, token_endpoint_auth_method = EXCLUDED.token_endpoint_auth_method,
		       metadata_expires_at = EXCLUDED.metadata_expires_at, updated_at = EXCLUDED.updated_at
		 WHERE c.origin = '` + ClientOriginMetadataDocument + `'
		RETURNING ` + clientColumns
	qDocumentClient = `
		SELECT ` + clientColumns + `, c.metadata_expires_at FROM clients c
		 WHERE c.id = $1 AND c.origin = '` + ClientOriginMetadataDocument + `'`

	// The janitor (safe on every instance: one DELETE, rows already gone are skipped).
	// A registration or document client is removed when nobody used it within a day of
	// its creation (no grant, no gateway call), or when it has been idle for long: its
	// last use (gateway call, token issuance, consent) is older than the idle cutoff.
	qDeleteUnusedRegistrations = `
		WITH doomed AS (
		    SELECT c.id FROM clients c
		     WHERE c.origin IN ('` + ClientOriginRegistration + `', '` + ClientOriginMetadataDocument + `')
		       AND c.created_at < $1
		       AND c.last_used_at IS NULL
		       AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = c.id)
		    UNION
		    SELECT c.id FROM clients c
		     WHERE c.origin IN ('` + ClientOriginRegistration + `', '` + ClientOriginMetadataDocument + `')
		       AND GREATEST(c.created_at, c.last_used_at,
		                    (SELECT max(GREATEST(g.updated_at, g.last_used_at)) FROM grants g WHERE g.client_id = c.id)) < $2
		), gone AS (
		    DELETE FROM clients c USING doomed d WHERE c.id = d.id RETURNING c.id
		)
		SELECT id FROM gone`

	// private_key_jwt replay protection (RFC 7523 §3 item 7): one INSERT per assertion.
	qInsertAssertionJTI = `
		INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (client_id, jti) DO NOTHING`
	qDeleteExpiredJTIs = `DELETE FROM client_assertion_jtis WHERE expires_at < $1`
)

// NewRegistration is a dynamic registration to store. The caller generates the client
// ID, the secret (confidential methods only) and the registration access token, and
// passes their keyed hashes.
type NewRegistration struct {
	ID                    string
	Name                  string
	Kind                  string // ClientKindPublic for "none", ClientKindGPT (confidential) otherwise
	RedirectURIs          []string
	AuthMethod            string
	Metadata              []byte // the registered oauth.ClientMetadata as JSON
	SecretHash            []byte
	SecretHint            string
	RegistrationTokenHash []byte
	IP                    string // for the audit log
}

// CreateRegistration stores a registered client with its first secret (if any) and an
// audit entry, in one transaction.
func (s *Store) CreateRegistration(ctx context.Context, n NewRegistration, now time.Time) (Client, error) {
	var out Client
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, qInsertRegistration, n.ID, n.Name, n.Kind, pq.Array(nonNil(n.RedirectURIs)),
			jsonOrEmpty(n.Metadata), n.AuthMethod, n.RegistrationTokenHash, now); err != nil {
			return err
		}
		if len(n.SecretHash) > 0 {
			if _, err := tx.q.ExecContext(ctx, qInsertSecret, n.ID, n.SecretHash, n.SecretHint, now); err != nil {
				return err
			}
		}
		details, _ := json.Marshal(map[string]any{"auth_method": n.AuthMethod, "redirect_uris": nonNil(n.RedirectURIs)})
		if err := tx.Audit(ctx, AuditEntry{At: now, ActorEmail: "registration", Action: "client.registered",
			TargetType: TargetClient, TargetID: n.ID, IP: n.IP, Details: details}); err != nil {
			return err
		}
		var err error
		out, err = tx.ClientByID(ctx, n.ID)
		return err
	})
	return out, wrap("create registration", err)
}

// RegistrationByToken returns the registered client whose registration access token has
// this hash (RFC 7592 §2); anything else (unknown client, wrong token, not a registered
// client) is ErrNotFound.
func (s *Store) RegistrationByToken(ctx context.Context, clientID string, tokenHash []byte) (Client, error) {
	var r Client
	err := s.getContext(ctx, &r, qRegistrationByToken, clientID, tokenHash)
	return r, wrap("registration by token", err)
}

// RegistrationUpdate is a replacement of a registration's metadata (RFC 7592 §2.2).
type RegistrationUpdate struct {
	Name         string
	RedirectURIs []string
	AuthMethod   string
	Metadata     []byte
	IP           string
}

// UpdateRegistration replaces the metadata of the registered client holding the token,
// with an audit entry; ErrNotFound as RegistrationByToken.
func (s *Store) UpdateRegistration(ctx context.Context, clientID string, tokenHash []byte, u RegistrationUpdate, now time.Time) (Client, error) {
	var r Client
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.getContext(ctx, &r, qUpdateRegistration, clientID, tokenHash, u.Name, pq.Array(nonNil(u.RedirectURIs)),
			jsonOrEmpty(u.Metadata), now, u.AuthMethod); err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]any{"redirect_uris": nonNil(u.RedirectURIs)})
		return tx.Audit(ctx, AuditEntry{At: now, ActorEmail: "registration", Action: "client.registration_updated",
			TargetType: TargetClient, TargetID: clientID, IP: u.IP, Details: details})
	})
	return r, wrap("update registration", err)
}

// DeleteRegistration deletes the registered client holding the token with its secrets
// and grants (the schema cascades), announces it so every token cache drops the client's
// tokens, and audits it; ErrNotFound as RegistrationByToken.
func (s *Store) DeleteRegistration(ctx context.Context, clientID string, tokenHash []byte, ip string, now time.Time) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "delete registration", qDeleteRegistration, clientID, tokenHash); err != nil {
			return err
		}
		if err := tx.notifyDeletedClient(ctx, clientID); err != nil {
			return err
		}
		return tx.Audit(ctx, AuditEntry{At: now, ActorEmail: "registration", Action: "client.registration_deleted",
			TargetType: TargetClient, TargetID: clientID, IP: ip})
	})
	return wrap("delete registration", err)
}

// notifyDeletedClient tells every instance that a client is gone: its tokens stop at the
// gateway and at introspection, and cached copies are dropped.
func (s *Store) notifyDeletedClient(ctx context.Context, clientID string) error {
	if err := s.notifyChange(ctx, RevocationsChannel, TargetClient+":"+clientID); err != nil {
		return err
	}
	return s.notifyChange(ctx, ChannelClientChanged, clientID)
}

// NewDocumentClient is a freshly fetched and validated metadata document.
type NewDocumentClient struct {
	ID           string // the document's URL
	Name         string
	Kind         string // ClientKindPublic for "none", ClientKindGPT for private_key_jwt
	RedirectURIs []string
	AuthMethod   string
	Metadata     []byte
	ExpiresAt    time.Time // when to fetch it again
}

// SaveDocumentClient creates or refreshes the client of a metadata document. A client ID
// that belongs to a client of another origin is ErrConflict.
func (s *Store) SaveDocumentClient(ctx context.Context, n NewDocumentClient, now time.Time) (Client, error) {
	var d Client
	err := s.getContext(ctx, &d, qUpsertDocumentClient, n.ID, n.Name, n.Kind, pq.Array(nonNil(n.RedirectURIs)),
		jsonOrEmpty(n.Metadata), n.AuthMethod, n.ExpiresAt, now)
	err = wrap("save document client", err)
	if err == ErrNotFound {
		return Client{}, ErrConflict
	}
	return d, err
}

// DocumentClientByID returns the cached client of a metadata document, or ErrNotFound.
func (s *Store) DocumentClientByID(ctx context.Context, id string) (Client, error) {
	var d Client
	err := s.getContext(ctx, &d, qDocumentClient, id)
	return d, wrap("document client", err)
}

// DeleteUnusedRegistrations removes registered and metadata-document clients never used
// since neverUsedBefore (no grant, no call) or idle since idleBefore, announces each
// deletion, and returns how many went. One transaction; safe to run on every instance.
func (s *Store) DeleteUnusedRegistrations(ctx context.Context, neverUsedBefore, idleBefore time.Time) (int, error) {
	var ids []string
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.selectContext(ctx, &ids, qDeleteUnusedRegistrations, neverUsedBefore, idleBefore); err != nil {
			return err
		}
		for _, id := range ids {
			if err := tx.notifyDeletedClient(ctx, id); err != nil {
				return err
			}
		}
		return nil
	})
	return len(ids), wrap("delete unused registrations", err)
}

// UseAssertionJTI records a client assertion's jti until it expires and reports whether
// it was new (false: a replay).
func (s *Store) UseAssertionJTI(ctx context.Context, clientID, jti string, expiresAt time.Time) (bool, error) {
	res, err := s.q.ExecContext(ctx, qInsertAssertionJTI, clientID, jti, expiresAt)
	if err != nil {
		return false, wrap("use assertion jti", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("use assertion jti", err)
}

// DeleteExpiredAssertionJTIs forgets jtis of assertions that expired before cutoff.
func (s *Store) DeleteExpiredAssertionJTIs(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, qDeleteExpiredJTIs, cutoff)
	if err != nil {
		return 0, wrap("delete expired jtis", err)
	}
	return res.RowsAffected()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func jsonOrEmpty(b []byte) []byte {
	if len(b) == 0 {
		return []byte(`{}`)
	}
	return b
}

const (
	// MCP clients connected to an app: clients without an app of their own that hold a
	// live grant for it, with how many users connected them and when they were last used.
	qMCPClientsOfApp = `
		SELECT c.id, c.name, c.origin, count(*) AS users, max(g.last_used_at) AS last_used_at, min(g.created_at) AS connected_at
		  FROM grants g JOIN clients c ON c.id = g.client_id JOIN apps a ON a.id = g.app_id
		 WHERE g.app_id = $1 AND a.owner_id = $2 AND g.revoked_at IS NULL AND c.app_id IS NULL
		 GROUP BY c.id, c.name, c.origin
		 ORDER BY max(coalesce(g.last_used_at, g.created_at)) DESC, c.id
		 LIMIT 500`
	qLockClientGrantsOnApp = `
		SELECT g.id FROM grants g JOIN apps a ON a.id = g.app_id
		 WHERE g.app_id = $1 AND a.owner_id = $2 AND g.client_id = $3 AND g.revoked_at IS NULL
		 FOR UPDATE OF g`
)

// MCPClient is an MCP client (dynamically registered or from a metadata document)
// connected to an app, as its developer sees it.
type MCPClient struct {
	ID          string     `db:"id"`
	Name        string     `db:"name"`
	Origin      string     `db:"origin"`
	Users       int64      `db:"users"`
	LastUsedAt  *time.Time `db:"last_used_at"`
	ConnectedAt time.Time  `db:"connected_at"`
}

// MCPClientsOfApp lists the MCP clients holding live grants for the owner's app, most
// recently used first.
func (s *Store) MCPClientsOfApp(ctx context.Context, ownerID, appID string) ([]MCPClient, error) {
	var out []MCPClient
	err := s.selectContext(ctx, &out, qMCPClientsOfApp, appID, ownerID)
	return out, wrap("mcp clients of app", err)
}

// RevokeClientGrantsOnApp revokes every live grant of the client for the owner's app
// (RevokeGrant: refresh tokens die, every instance is told) and audits it, in one
// transaction. ErrNotFound when there is none (or the app is not the owner's).
func (s *Store) RevokeClientGrantsOnApp(ctx context.Context, ownerID, appID, clientID string, actor AuditEntry, now time.Time) (int, error) {
	var ids []string
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.selectContext(ctx, &ids, qLockClientGrantsOnApp, appID, ownerID, clientID); err != nil {
			return err
		}
		if len(ids) == 0 {
			return ErrNotFound
		}
		for _, id := range ids {
			if _, err := tx.RevokeGrantBy(ctx, id, RevokedByDeveloper, now); err != nil {
				return err
			}
		}
		details, _ := json.Marshal(map[string]any{"app_id": appID, "grants": len(ids)})
		actor.At, actor.Action, actor.TargetType, actor.TargetID, actor.Details = now, "app.mcp_client_revoked", TargetClient, clientID, details
		return tx.Audit(ctx, actor)
	})
	return len(ids), wrap("revoke client grants on app", err)
}

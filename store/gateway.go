package store

import (
	"context"
	"time"
)

const (
	qGatewayScopes = `SELECT name FROM app_scopes WHERE app_id = $1 ORDER BY builtin DESC, created_at, name`
	qScopeRules    = `
		SELECT app_id, method, path_prefix, scope FROM gateway_scope_rules
		 WHERE app_id = $1 ORDER BY length(path_prefix) DESC, (method = '*'), method, path_prefix`
	qDeleteScopeRules = `DELETE FROM gateway_scope_rules WHERE app_id = $1`
	qInsertScopeRule  = `
		INSERT INTO gateway_scope_rules (app_id, method, path_prefix, scope, created_at) VALUES ($1, $2, $3, $4, $5)`

	// The state behind a user's access token, in one round trip: the grant (revoked, and
	// still bound to the token's user and client), its client, app and user. A client
	// without an app of its own (an MCP client) is the grant's app's.
	qUserTokenStatus = `
		SELECT coalesce(c.app_id, g.app_id) AS app_id, g.app_id AS grant_app_id,
		       c.suspended_at IS NOT NULL AS client_suspended,
		       (g.revoked_at IS NOT NULL OR g.user_id <> $3::uuid OR g.client_id <> c.id) AS grant_revoked,
		       u.suspended_at IS NOT NULL AS user_suspended,
		       (c.app_id IS NULL AND NOT a.mcp_enabled) AS mcp_closed
		  FROM grants g
		  JOIN clients c ON c.id = $2
		  JOIN users u ON u.id = g.user_id
		  JOIN apps a ON a.id = g.app_id
		 WHERE g.id = $1`
	// client_credentials tokens have no grant and no user: only the client matters.
	qClientTokenStatus = `
		SELECT coalesce(c.app_id::text, '') AS app_id, coalesce(c.app_id::text, '') AS grant_app_id, c.suspended_at IS NOT NULL AS client_suspended,
		       false AS grant_revoked, false AS user_suspended, false AS mcp_closed
		  FROM clients c WHERE c.id = $1`
)

// GatewayApp is what the gateway needs to serve an app: the app, the names of its scopes
// (for the protected resource metadata) and its scope rules, longest prefix first.
type GatewayApp struct {
	App
	Scopes []string
	Rules  []ScopeRule
	Prices []RoutePrice // its prices per route (the gateway compiles them: NewPriceTable)
	Plan   Plan
	// HeaderConnections: the app declares a connection delivered as a header, so the
	// gateway looks up the caller's linked accounts (apps without one never do).
	HeaderConnections bool
}

// ScopeRule requires Scope for calls whose path (relative to /gw/<slug>) starts with
// PathPrefix and whose method is Method ("*" for any).
type ScopeRule struct {
	AppID      string `db:"app_id"`
	Method     string `db:"method"`
	PathPrefix string `db:"path_prefix"`
	Scope      string `db:"scope"`
}

// GatewayAppBySlug loads an app with its scopes and scope rules (not owner-scoped).
func (s *Store) GatewayAppBySlug(ctx context.Context, slug string) (GatewayApp, error) {
	var ga GatewayApp
	var err error
	if ga.App, err = s.AppBySlug(ctx, slug); err != nil {
		return GatewayApp{}, err
	}
	if err := s.selectContext(ctx, &ga.Scopes, qGatewayScopes, ga.ID); err != nil {
		return GatewayApp{}, wrap("gateway app scopes", err)
	}
	if ga.Rules, err = s.ScopeRulesByApp(ctx, ga.ID); err != nil {
		return GatewayApp{}, err
	}
	if ga.Prices, err = s.RoutePricesByApp(ctx, ga.ID); err != nil {
		return GatewayApp{}, err
	}
	if ga.Plan, err = s.PlanByApp(ctx, ga.ID); err != nil {
		return GatewayApp{}, err
	}
	if ga.HeaderConnections, err = s.HasHeaderConnections(ctx, ga.ID); err != nil {
		return GatewayApp{}, err
	}
	return ga, nil
}

// ScopeRulesByApp lists an app's scope rules, longest prefix first and, for one prefix, a
// specific method before "*": the first rule that matches a call is the one that applies.
func (s *Store) ScopeRulesByApp(ctx context.Context, appID string) ([]ScopeRule, error) {
	var out []ScopeRule
	err := s.selectContext(ctx, &out, qScopeRules, appID)
	return out, wrap("scope rules by app", err)
}

// SetScopeRules replaces an app's scope rules in one transaction. An empty list removes
// them all (any valid token passes).
func (s *Store) SetScopeRules(ctx context.Context, appID string, rules []ScopeRule, now time.Time) error {
	return wrap("set scope rules", s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, qDeleteScopeRules, appID); err != nil {
			return err
		}
		for _, r := range rules {
			method := r.Method
			if method == "" {
				method = "*"
			}
			if _, err := tx.q.ExecContext(ctx, qInsertScopeRule, appID, method, r.PathPrefix, r.Scope, now); err != nil {
				return err
			}
		}
		return nil
	}))
}

// TokenStatus is the database state behind a verified access token.
type TokenStatus struct {
	ClientAppID     string `db:"app_id"`       // the app the token's client belongs to
	GrantAppID      string `db:"grant_app_id"` // the app of the grant (the client's app for client_credentials)
	ClientSuspended bool   `db:"client_suspended"`
	GrantRevoked    bool   `db:"grant_revoked"` // revoked, or no longer this user's grant for this client
	UserSuspended   bool   `db:"user_suspended"`
	// MCPClosed: an MCP client (registered or metadata-document, bound to the app only
	// through its grant) whose app is no longer open to MCP clients.
	MCPClosed bool `db:"mcp_closed"`
}

// Active reports whether a token with this status may be used for appID.
func (t TokenStatus) Active(appID string) bool {
	return !t.ClientSuspended && !t.GrantRevoked && !t.UserSuspended && !t.MCPClosed &&
		t.ClientAppID == appID && t.GrantAppID == appID
}

// ValidUUID reports whether s is a UUID in its textual form, so a malformed ID from a
// token is refused before it reaches a uuid column. (The usage flush checks two IDs per
// event: a byte loop, not a regular expression.)
func ValidUUID(s string) bool { return isUUID(s) }

// TokenStatus returns the state behind an access token: for a user token (grantID set)
// the grant, client and user; for a client_credentials token only the client. An unknown
// grant or client, or a malformed ID, is ErrNotFound.
func (s *Store) TokenStatus(ctx context.Context, grantID, clientID, userID string) (TokenStatus, error) {
	var st TokenStatus
	var err error
	if grantID == "" {
		err = s.getContext(ctx, &st, qClientTokenStatus, clientID)
	} else {
		if !ValidUUID(grantID) || !ValidUUID(userID) {
			return TokenStatus{}, ErrNotFound
		}
		err = s.getContext(ctx, &st, qUserTokenStatus, grantID, clientID, userID)
	}
	return st, wrap("token status", err)
}

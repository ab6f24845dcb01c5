package authserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/loadcache"
)

// maxCachedClients bounds the cache; past it the cache starts over (a flood of made-up
// client IDs cannot grow memory).
const maxCachedClients = 50_000

// clientCache keeps store.OAuthClient values per client ID so that token requests need
// no database round trip to authenticate a client. Correctness:
//
//   - Every write to clients, client_secrets, apps or app_scopes NOTIFYs
//     'authgpts_clients' (triggers of migration 00004), which drops the entry at once on
//     every instance; a reconnection of the listener drops everything.
//   - Entries also expire after ttl (5 s), bounding staleness when a NOTIFY is lost.
//   - A lookup that fails against a cached entry (unknown secret, redirect URI or scope)
//     reloads the entry once, so something added a moment ago is never refused.
//   - A load that raced with an invalidation is used once but not cached (loadcache).
//   - Secret expiry (rotation overlap) is checked at use time, not at load time.
type clientCache struct {
	store *store.Store
	now   func() time.Time // the server clock, for secret expiry
	cache *loadcache.Cache[*clientEntry]
}

// clientEntry is one cached client, or the fact that it does not exist.
type clientEntry struct {
	found bool
	oc    store.OAuthClient
	// reloaded marks an entry loaded because a lookup missed: it does not reload again.
	reloaded bool
	missUsed atomic.Bool

	scopeNames    []string
	defaultScopes []string
	app           *appEntry // the client's own app; nil for MCP clients (no app)
	jwksURI       string    // private_key_jwt clients: where their keys are published
}

func newClientCache(st *store.Store, ttl time.Duration, now func() time.Time) *clientCache {
	return &clientCache{store: st, now: now, cache: loadcache.New[*clientEntry](ttl, maxCachedClients)}
}

// get returns the entry for id, loading it when absent or older than the TTL.
func (cc *clientCache) get(ctx context.Context, id string) (*clientEntry, error) {
	return cc.cache.Get(ctx, id, cc.now(), cc.loader(id, false))
}

// reloadAfterMiss reloads e from the database when a lookup against it failed, once per
// loaded entry; it returns nil when e was already reloaded for a miss.
func (cc *clientCache) reloadAfterMiss(ctx context.Context, id string, e *clientEntry) (*clientEntry, error) {
	if e.reloaded || !e.missUsed.CompareAndSwap(false, true) {
		return nil, nil
	}
	return cc.load(ctx, id, true)
}

// load reads id from the database now; reloads after a miss run as their own flight.
func (cc *clientCache) load(ctx context.Context, id string, afterMiss bool) (*clientEntry, error) {
	flight := id
	if afterMiss {
		flight = "\x00miss\x00" + id
	}
	return cc.cache.Load(ctx, id, flight, cc.now(), cc.loader(id, afterMiss))
}

func (cc *clientCache) loader(id string, afterMiss bool) func(context.Context) (*clientEntry, error) {
	return func(ctx context.Context) (*clientEntry, error) {
		oc, err := cc.store.OAuthClientByID(ctx, id, cc.now())
		e := &clientEntry{reloaded: afterMiss}
		switch {
		case err == nil:
			e.found, e.oc = true, oc
			if oc.Client.AuthMethod == oauth.AuthMethodPrivateKeyJWT {
				var m oauth.ClientMetadata
				if json.Unmarshal(oc.Client.Metadata, &m) == nil {
					e.jwksURI = m.JWKSURI
				}
			}
			if oc.Client.HasApp() {
				e.app = newAppEntry(store.OAuthApp{App: oc.App, OwnerEmail: oc.OwnerEmail, Scopes: oc.Scopes, Source: oc.Source})
				e.scopeNames, e.defaultScopes = e.app.scopeNames, e.app.defaultScopes
			}
		case errors.Is(err, store.ErrNotFound):
		default:
			return nil, err
		}
		return e, nil
	}
}

// invalidate handles a NOTIFY payload: "client:<id>" drops that client, "app:<id>" every
// client of the app (and every "no such client"), anything else everything.
func (cc *clientCache) invalidate(payload string) {
	kind, id, _ := strings.Cut(payload, ":")
	switch kind {
	case "client":
		cc.cache.Evict(func(k string, _ *clientEntry) bool { return k == id })
	case "app":
		cc.cache.Evict(func(_ string, e *clientEntry) bool { return !e.found || e.oc.App.ID == id })
	default:
		cc.cache.Clear()
	}
}

// flush drops every entry (the listener reconnected: notifications may have been lost).
func (cc *clientCache) flush() { cc.cache.Clear() }

// usable reports whether the client may take part in a flow: it exists and neither it
// nor its app (when it has one) is suspended. The app an MCP client is bound to is
// checked where it is bound.
func (e *clientEntry) usable() bool {
	return e.found && !e.oc.Client.IsSuspended() && (e.app == nil || !e.oc.App.IsSuspended())
}

// secretMatches compares the hash of a presented secret with every secret that still
// works at now, in constant time.
func (e *clientEntry) secretMatches(hash []byte, now time.Time) bool {
	ok := 0
	for _, s := range e.oc.Secrets {
		if s.ExpiresAt != nil && !now.Before(*s.ExpiresAt) {
			continue
		}
		ok |= subtle.ConstantTimeCompare(s.Hash, hash)
	}
	return ok == 1
}

// policy is what the client's kind and the app it is bound to allow in an
// authorization request. PKCE is required from public clients (RFC 9700 §2.1.1) and from
// every MCP client, confidential or not (the MCP authorization spec requires it of all).
func (e *clientEntry) policy(app *appEntry) oauth.AuthorizePolicy {
	return oauth.AuthorizePolicy{
		RequirePKCE:   !e.oc.Client.IsConfidential() || e.oc.Client.IsMCP(),
		Scopes:        app.scopeNames,
		DefaultScopes: app.defaultScopes,
	}
}

// errClientAuth is the one answer for an unknown client or a wrong secret, so that the
// answer does not tell which (RFC 6749 §5.2 invalid_client, 401).
var errClientAuth = oauth.ErrInvalidClient.WithDescription("Client authentication failed.")

// authenticateClient identifies and authenticates the client of a token, introspection
// or revocation request: client_secret_basic or client_secret_post for every
// confidential client, none for public clients. Suspended clients and apps are
// invalid_client. The credentials are returned even with an error, for the Basic
// challenge.
func (h *Handler) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (*clientEntry, oauth.ClientCredentials, error) {
	if form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "" {
		if r.Header.Get("Authorization") != "" {
			return nil, oauth.ClientCredentials{}, oauth.ErrInvalidRequest.WithDescription("Use one client authentication method.")
		}
		return h.authenticateAssertion(ctx, form, h.log)
	}
	creds, err := oauth.ParseClientCredentials(r, form)
	if err != nil {
		return nil, creds, err
	}
	e, err := h.lookupClient(ctx, creds.ID)
	var de *documentError
	if errors.As(err, &de) {
		return nil, creds, oauth.ErrInvalidClient.WithDescription("The client's metadata document could not be used.")
	}
	if err != nil {
		return nil, creds, err
	}
	if !e.found {
		if e2, err := h.clients.reloadAfterMiss(ctx, creds.ID, e); err != nil {
			return nil, creds, err
		} else if e2 != nil {
			e = e2
		}
	}
	if !e.found {
		return nil, creds, errClientAuth
	}
	if !e.usable() {
		return nil, creds, oauth.ErrInvalidClient.WithDescription("This client or its app is suspended.")
	}
	now := h.now()
	if !e.oc.Client.IsConfidential() {
		// A public client has no secret. Libraries that always use Basic send "id:" with
		// an empty secret: that is "none" too.
		if creds.Secret != "" {
			return nil, creds, oauth.ErrInvalidClient.WithDescription("This is a public client: it has no client secret; send client_id only.")
		}
		return e, creds, nil
	}
	if e.oc.Client.AuthMethod == oauth.AuthMethodPrivateKeyJWT {
		return nil, creds, oauth.ErrInvalidClient.WithDescription("This client must authenticate with a private_key_jwt client assertion.")
	}
	if creds.Secret == "" {
		return nil, creds, oauth.ErrInvalidClient.WithDescription("This client must authenticate with its client secret (HTTP Basic or client_secret in the body).")
	}
	hash := h.hasher.Hash(creds.Secret)
	if e.secretMatches(hash, now) {
		return e, creds, nil
	}
	// The secret may have been rotated a moment ago, before the NOTIFY arrived.
	if e2, err := h.clients.reloadAfterMiss(ctx, creds.ID, e); err != nil {
		return nil, creds, err
	} else if e2 != nil && e2.usable() && e2.secretMatches(hash, now) {
		return e2, creds, nil
	}
	return nil, creds, errClientAuth
}

// hasScope reports whether the app offers scope.
func (e *clientEntry) hasScope(scope string) bool { return slices.Contains(e.scopeNames, scope) }

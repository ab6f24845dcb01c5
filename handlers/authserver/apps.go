package authserver

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/loadcache"
)

// appEntry is an app as the authorization and token endpoints see it: the app, its
// owner's email and its scopes.
type appEntry struct {
	found         bool
	oa            store.OAuthApp
	scopeNames    []string
	defaultScopes []string
}

func newAppEntry(oa store.OAuthApp) *appEntry {
	e := &appEntry{found: true, oa: oa}
	for _, s := range oa.Scopes {
		e.scopeNames = append(e.scopeNames, s.Name)
		if s.IsDefault {
			e.defaultScopes = append(e.defaultScopes, s.Name)
		}
	}
	return e
}

// root is the app's resource URL, the default aud of its tokens.
func (a *appEntry) root(issuer string) string { return oauth.AppResource(issuer, a.oa.App.Slug, "") }

// appCache keeps the apps that clients without an app of their own (MCP clients) bind
// to, by slug (authorization requests name the resource) and by ID (token requests name
// the grant's app). Same rules as clientCache: NOTIFY 'authgpts_clients' with
// "app:<id>" drops the app on every instance, a TTL bounds staleness when a NOTIFY is
// lost, and a load that raced with an invalidation is used once but not cached.
type appCache struct {
	store *store.Store
	now   func() time.Time
	cache *loadcache.Cache[*appEntry] // keys "id:<id>" and "slug:<slug>"
}

func newAppCache(st *store.Store, ttl time.Duration, now func() time.Time) *appCache {
	return &appCache{store: st, now: now, cache: loadcache.New[*appEntry](ttl, maxCachedClients)}
}

func (ac *appCache) bySlug(ctx context.Context, slug string) (*appEntry, error) {
	return ac.get(ctx, "slug:"+slug, func(ctx context.Context) (store.OAuthApp, error) {
		return ac.store.OAuthAppBySlug(ctx, slug)
	})
}

func (ac *appCache) byID(ctx context.Context, id string) (*appEntry, error) {
	return ac.get(ctx, "id:"+id, func(ctx context.Context) (store.OAuthApp, error) {
		return ac.store.OAuthAppByID(ctx, id)
	})
}

func (ac *appCache) get(ctx context.Context, key string, load func(context.Context) (store.OAuthApp, error)) (*appEntry, error) {
	return ac.cache.Get(ctx, key, ac.now(), func(ctx context.Context) (*appEntry, error) {
		oa, err := load(ctx)
		switch {
		case err == nil:
			return newAppEntry(oa), nil
		case errors.Is(err, store.ErrNotFound):
			return &appEntry{}, nil
		default:
			return nil, err
		}
	})
}

// invalidate handles a NOTIFY payload of 'authgpts_clients': "app:<id>" drops that app
// (under both keys, and every unknown-app entry: a new app may now have that slug);
// "client:<id>" concerns no app; anything else drops everything.
func (ac *appCache) invalidate(payload string) {
	kind, id, _ := strings.Cut(payload, ":")
	switch kind {
	case "client":
	case "app":
		ac.cache.Evict(func(_ string, e *appEntry) bool { return !e.found || e.oa.App.ID == id })
	default:
		ac.cache.Clear()
	}
}

// flush drops every entry (the listener reconnected: notifications may have been lost).
func (ac *appCache) flush() { ac.cache.Clear() }

// usable reports whether tokens may be issued for the app (it exists, is not suspended).
func (a *appEntry) usable() bool { return a.found && !a.oa.App.IsSuspended() }

// openTo reports whether client may be bound to the app: a client of the app itself,
// or an MCP client (no app of its own) when the app is open to MCP clients.
func (a *appEntry) openTo(c store.Client) bool {
	if c.HasApp() {
		return c.AppID == a.oa.App.ID
	}
	return a.oa.App.MCPEnabled
}

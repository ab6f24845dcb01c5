package oauth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// appEntry is an app as the authorization and token endpoints see it: the app, its
// owner's email and its scopes.
type appEntry struct {
	found         bool
	oa            store.OAuthApp
	loadedAt      time.Time
	scopeNames    []string
	defaultScopes []string
}

func newAppEntry(oa store.OAuthApp) *appEntry {
	e := &appEntry{found: true, oa: oa, loadedAt: time.Now()}
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
	ttl   time.Duration

	mu    sync.RWMutex
	byKey map[string]*appEntry // "id:<id>" and "slug:<slug>"
	gen   atomic.Uint64
	group singleflight.Group
}

func newAppCache(st *store.Store, ttl time.Duration) *appCache {
	return &appCache{store: st, ttl: ttl, byKey: make(map[string]*appEntry)}
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
	ac.mu.RLock()
	e := ac.byKey[key]
	ac.mu.RUnlock()
	if e != nil && time.Since(e.loadedAt) < ac.ttl {
		return e, nil
	}
	v, err, _ := ac.group.Do(key, func() (any, error) {
		gen := ac.gen.Load()
		oa, err := load(context.WithoutCancel(ctx))
		var e *appEntry
		switch {
		case err == nil:
			e = newAppEntry(oa)
		case errors.Is(err, store.ErrNotFound):
			e = &appEntry{loadedAt: time.Now()}
		default:
			return nil, err
		}
		ac.mu.Lock()
		if ac.gen.Load() == gen {
			if len(ac.byKey) >= maxCachedClients {
				ac.byKey = make(map[string]*appEntry)
			}
			ac.byKey[key] = e
		}
		ac.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*appEntry), nil
}

// invalidate handles a NOTIFY payload of 'authgpts_clients': "app:<id>" drops that app
// (under both keys, and every unknown-app entry: a new app may now have that slug).
func (ac *appCache) invalidate(payload string) {
	kind, id, _ := strings.Cut(payload, ":")
	if kind == "client" {
		return
	}
	ac.gen.Add(1)
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if kind != "app" {
		ac.byKey = make(map[string]*appEntry)
		return
	}
	for k, e := range ac.byKey {
		if !e.found || e.oa.App.ID == id {
			delete(ac.byKey, k)
		}
	}
}

func (ac *appCache) flush() {
	ac.gen.Add(1)
	ac.mu.Lock()
	ac.byKey = make(map[string]*appEntry)
	ac.mu.Unlock()
}

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

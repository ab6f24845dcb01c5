package gateway

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/loadcache"
)

// tokenKey is the cache key of an access token: its SHA-256, so the cache never holds a
// usable token.
type tokenKey [sha256.Size]byte

// hashBuffers lend hashToken a byte copy of the token (a conversion would allocate one
// per call).
var hashBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func hashToken(token string) tokenKey {
	bp := hashBuffers.Get().(*[]byte)
	b := append((*bp)[:0], token...)
	k := tokenKey(sha256.Sum256(b))
	*bp = b
	hashBuffers.Put(bp)
	return k
}

// verified is an access token that passed every check for one app: signature, iss, exp,
// and the grant, client and user state. The aud and scope checks depend on the call
// and are made on every call from these claims.
type verified struct {
	claims oauth.AccessClaims
	appID  string
	scopes []string
	// userID is the end user the call is metered to: the subject of a user's token or
	// the owner of a personal API key; "" for client_credentials tokens and developer keys.
	userID string
	keyID  string // the API key, for calls made with one
	// rateKey is the rate limiter's key: (app, subject).
	rateKey string
	// identity holds the X-AuthGPTs-* headers (but the assertion) the upstream gets,
	// built once; the value slices are shared by every call and never modified.
	identity []headerValue
	// assertion is the last signed X-AuthGPTs-Assertion for this token, reused while it
	// has more than assertionMinLeft to live (RS256 signing costs ~0.7 ms of CPU).
	assertion atomic.Pointer[signedAssertion]
}

type headerValue struct {
	key   string // canonical form
	value []string
}

type signedAssertion struct {
	header   []string // the header value: the JWT
	audience string
	expires  time.Time
}

// Canonical header keys and shared values set on every call.
var (
	canonUser      = textproto.CanonicalMIMEHeaderKey(HeaderUser)
	canonIssuer    = textproto.CanonicalMIMEHeaderKey(HeaderIssuer)
	canonEmail     = textproto.CanonicalMIMEHeaderKey(HeaderEmail)
	canonScopes    = textproto.CanonicalMIMEHeaderKey(HeaderScopes)
	canonClient    = textproto.CanonicalMIMEHeaderKey(HeaderClient)
	canonAssertion = textproto.CanonicalMIMEHeaderKey(HeaderAssertion)

	valNoSniff = []string{"nosniff"}
	valSandbox = []string{"sandbox"}
)

// newVerified builds the cache entry of a token that passed every check for appID.
func newVerified(claims oauth.AccessClaims, appID string) *verified {
	scopes, _ := oauth.ParseScope(claims.Scope)
	v := &verified{claims: claims, appID: appID, scopes: scopes, rateKey: appID + "\x00" + claims.Subject}
	issuer := claims.Issuer // this server vouches for its own users and clients
	if claims.IdP != "" {
		issuer = claims.IdP // an identity source's user: sub is the upstream subject
	}
	if claims.GrantID != "" {
		v.userID = claims.Subject
	}
	v.identity = []headerValue{
		{canonUser, []string{claims.PublicSubject()}},
		{canonIssuer, []string{issuer}},
		{canonClient, []string{claims.ClientID}},
		{canonScopes, []string{strings.Join(scopes, " ")}},
	}
	if claims.Email != "" && oauth.HasScope(scopes, "email") {
		v.identity = append(v.identity, headerValue{canonEmail, []string{claims.Email}})
	}
	return v
}

// tokenCache is a bounded map of verified tokens. Entries expire with their token and
// are evicted by revocation messages. gen counts evictions: a verification that read the
// database before an eviction must not insert its (possibly stale) result after it.
type tokenCache struct {
	mu      sync.RWMutex
	m       map[tokenKey]*verified
	max     int
	gen     uint64
	enabled bool
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[tokenKey]*verified), max: max}
}

func (c *tokenCache) get(k tokenKey, now time.Time) (*verified, uint64) {
	c.mu.RLock()
	v, gen, on := c.m[k], c.gen, c.enabled
	c.mu.RUnlock()
	if !on || v == nil || !now.Before(v.claims.Expiry) {
		return nil, gen
	}
	return v, gen
}

// put stores v unless an eviction happened since gen was read, or caching is off; a
// full cache first drops what expired by now.
func (c *tokenCache) put(k tokenKey, v *verified, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled || c.gen != gen {
		return
	}
	if len(c.m) >= c.max {
		c.shrinkLocked(now)
	}
	c.m[k] = v
}

// shrinkLocked drops expired entries, then, if still full, an arbitrary tenth (Go's
// random map order): the cache stays bounded without an LRU list on the hot path.
func (c *tokenCache) shrinkLocked(now time.Time) {
	for k, v := range c.m {
		if !now.Before(v.claims.Expiry) {
			delete(c.m, k)
		}
	}
	drop := len(c.m) - c.max + c.max/10 + 1
	for k := range c.m {
		if drop <= 0 {
			break
		}
		delete(c.m, k)
		drop--
	}
}

func (c *tokenCache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		if !now.Before(v.claims.Expiry) {
			delete(c.m, k)
		}
	}
}

// evict removes the entries match selects.
func (c *tokenCache) evict(match func(*verified) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, v := range c.m {
		if match(v) {
			delete(c.m, k)
		}
	}
}

// setEnabled turns caching on or off; either way the cache is emptied.
func (c *tokenCache) setEnabled(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.enabled = on
	clear(c.m)
}

func (c *tokenCache) isEnabled() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.enabled
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// gatewayApp is an app as the gateway serves it, with its upstream parsed once.
type gatewayApp struct {
	store.GatewayApp
	prices         *store.PriceTable // nil when the app has no route prices
	upstream       *url.URL          // nil when the developer set none
	upstreamString string            // upstream.String(): the audience of the gateway's assertions
}

// maxCachedApps bounds the app cache (slugs in URLs are anyone's to make up).
const maxCachedApps = 10_000

// appCache keeps apps by slug for ttl (settings edited in the portal apply within ttl;
// suspensions and anything announced with NOTIFY 'app:<id>' apply at once). Loads are
// deduplicated, so a burst of calls to a cold app costs one query; an app in use is
// reloaded in the background in the last fifth of its ttl; an unknown slug is cached as
// a nil app.
type appCache struct {
	st    *store.Store
	cache *loadcache.Cache[*gatewayApp]
}

func newAppCache(st *store.Store, ttl time.Duration) *appCache {
	// Refresh ahead: every call of every user needs the app, so a synchronous reload at
	// each TTL would stall all of them behind one query.
	return &appCache{st: st, cache: loadcache.New[*gatewayApp](ttl, maxCachedApps).RefreshAhead(ttl / 5)}
}

// get returns the app with that slug, or store.ErrNotFound.
func (c *appCache) get(ctx context.Context, slug string, now time.Time) (*gatewayApp, error) {
	app, err := c.cache.Get(ctx, slug, now, func(ctx context.Context) (*gatewayApp, error) {
		ga, err := c.st.GatewayAppBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		app := &gatewayApp{GatewayApp: ga}
		if len(ga.Prices) > 0 {
			app.prices = store.NewPriceTable(ga.Prices)
		}
		if u, err := url.Parse(strings.TrimSpace(ga.UpstreamURL)); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			app.upstream, app.upstreamString = u, u.String()
		}
		return app, nil
	})
	if err != nil {
		return nil, err
	}
	if app == nil {
		return nil, store.ErrNotFound
	}
	return app, nil
}

// evictApp drops the app with that ID (or every app when id is empty) and every cached
// "no such app" (a new app may have taken that slug).
func (c *appCache) evictApp(id string) {
	c.cache.Evict(func(_ string, app *gatewayApp) bool { return id == "" || app == nil || app.ID == id })
}

func (c *appCache) setEnabled(on bool) { c.cache.SetEnabled(on) }

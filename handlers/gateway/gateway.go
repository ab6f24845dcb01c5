package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/ratelimit"
)

// KeySource gives the server's signing and verification keys: the OAuth server's key
// manager (*signingkeys.Keys) implements it. KeySet signs the gateway's assertions and must be
// an in-memory read. VerifyAccessToken verifies a token with the current keys, and when
// the token names a key this instance does not hold yet (rotated on another instance,
// its NOTIFY not yet arrived) reloads them first, at a bounded rate.
type KeySource interface {
	KeySet() *oauth.KeySet
	VerifyAccessToken(ctx context.Context, token string, now time.Time, issuer string) (oauth.AccessClaims, error)
}

// ConnectionHeaders gives the X-AuthGPTs-Connection-<provider> headers of a user's call
// to an app (handlers/connections implements it). The gateway asks only for apps that
// declare a connection delivered by header.
type ConnectionHeaders interface {
	HeaderValues(ctx context.Context, appID, userID string) (http.Header, error)
}

// Config holds the gateway's dependencies and tunables; zero tunables get defaults.
type Config struct {
	Store         *store.Store
	Keys          KeySource
	KeyHash       oauth.Hasher      // hashes API keys as the portal stored them (DerivedKeys.TokenHash)
	Connections   ConnectionHeaders // nil: no connection headers
	BaseURL       *url.URL          // the issuer; resources are BaseURL + /gw/<slug>[/…]
	Notifications Notifications     // the shared LISTEN connection; nil: no cross-instance invalidation (one instance only)
	Log           *slog.Logger
	Now           func() time.Time

	MaxBodyBytes          int64             // request body limit (default 10 MiB)
	DialTimeout           time.Duration     // upstream connect timeout (default 5 s)
	ResponseHeaderTimeout time.Duration     // upstream time to first response byte (default 60 s)
	Transport             http.RoundTripper // default: a tuned http.Transport with the timeouts above

	TokenCacheSize int           // verified tokens kept (default 50 000)
	AppCacheTTL    time.Duration // how long app settings are reused without NOTIFY (default 5 s)

	UsageBatchSize     int           // events per COPY (default 1000)
	UsageFlushInterval time.Duration // flush at least this often (default 1 s)
	UsageBufferSize    int           // events held in memory at most; beyond, events are dropped and counted (default 200 000)
	RollupInterval     time.Duration // roll-up job period (default 1 min; negative: disabled)
	UsageRetention     time.Duration // raw events kept after their roll-up (default 30 days; negative: forever)
}

// Gateway is the /gw proxy with its caches and background workers.
type Gateway struct {
	cfg     Config
	issuer  string
	tokens  *tokenCache
	apps    *appCache
	limiter *ratelimit.Limiter // per (app, user), shared by every instance
	usage   *usageBuffer
	credits *creditLeases
	proxy   *httputil.ReverseProxy

	startOnce sync.Once
	closeOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
}

// New builds a gateway; call Start to run its background workers.
func New(cfg Config) *Gateway {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	setDefault(&cfg.MaxBodyBytes, 10<<20)
	setDefault(&cfg.DialTimeout, 5*time.Second)
	setDefault(&cfg.ResponseHeaderTimeout, 60*time.Second)
	setDefault(&cfg.TokenCacheSize, 50_000)
	setDefault(&cfg.AppCacheTTL, 5*time.Second)
	setDefault(&cfg.UsageBatchSize, 1000)
	setDefault(&cfg.UsageFlushInterval, time.Second)
	setDefault(&cfg.UsageBufferSize, 200_000)
	setDefault(&cfg.RollupInterval, time.Minute)
	setDefault(&cfg.UsageRetention, 30*24*time.Hour)
	if cfg.Transport == nil {
		cfg.Transport = newTransport(cfg)
	}
	g := &Gateway{
		cfg:     cfg,
		issuer:  strings.TrimSuffix(cfg.BaseURL.String(), "/"),
		tokens:  newTokenCache(cfg.TokenCacheSize),
		apps:    newAppCache(cfg.Store, cfg.AppCacheTTL),
		limiter: ratelimit.New(cfg.Store, "gw:", time.Minute),
		usage:   newUsageBuffer(cfg.Store, cfg.Log, cfg.UsageBatchSize, cfg.UsageBufferSize),
		credits: newCreditLeases(cfg.Store),
		stop:    make(chan struct{}),
	}
	// Without notifications there is no way to hear about revocations on other
	// instances: caching is then only right for a single instance, which is what a nil
	// Notifications declares. With them, caching starts once the LISTENs are in effect.
	g.tokens.setEnabled(cfg.Notifications == nil)
	g.apps.setEnabled(cfg.Notifications == nil)
	g.proxy = g.newProxy()
	return g
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// newTransport is the upstream transport: bounded connect and header timeouts, no
// overall timeout (responses may stream for as long as the upstream keeps sending), and
// enough idle connections per host for a busy upstream.
func newTransport(cfg Config) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // the upstream is called directly, never through an environment proxy
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.DialTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
}

// Register adds the gateway routes. r must be the engine (or a group without the
// browser middleware): the gateway sets no cookie and reads none.
func (g *Gateway) Register(r gin.IRouter) {
	r.Any("/gw/:slug", g.serve)
	r.Any("/gw/:slug/*path", g.serve)
	r.GET("/.well-known/oauth-protected-resource/gw/:slug", g.resourceMetadata)
	r.GET("/.well-known/oauth-protected-resource/gw/:slug/*path", g.resourceMetadata)
	r.OPTIONS("/.well-known/oauth-protected-resource/gw/:slug", web.Preflight)
	r.OPTIONS("/.well-known/oauth-protected-resource/gw/:slug/*path", web.Preflight)
	r.GET("/.well-known/oauth-protected-resource", g.rootResourceMetadata)
	r.OPTIONS("/.well-known/oauth-protected-resource", web.Preflight)
}

// Start subscribes to revocations (when Notifications is set) and runs the background
// workers: the usage flusher, the roll-up job and cache sweeping. Stop them with Close.
func (g *Gateway) Start() {
	g.startOnce.Do(func() {
		if n := g.cfg.Notifications; n != nil {
			if err := g.subscribe(n); err != nil {
				g.cfg.Log.Error("gateway: LISTEN failed; caches stay off", "err", err)
			}
		}
		g.wg.Add(1)
		go g.flushLoop()
		if g.cfg.RollupInterval > 0 {
			g.every(g.cfg.RollupInterval, nil, func() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if _, err := g.RollUp(ctx); err != nil {
					g.cfg.Log.Error("gateway: usage roll-up failed", "err", err)
				}
			})
		}
		g.every(5*time.Second, nil, func() {
			now := g.cfg.Now()
			g.tokens.sweep(now)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := g.credits.release(ctx, now.Add(-leaseIdle), now); err != nil {
				g.cfg.Log.Error("gateway: return leased credits", "err", err)
			}
			if err := g.limiter.Release(ctx, now, false); err != nil {
				g.cfg.Log.Error("gateway: return leased rate-limit tokens", "err", err)
			}
		})
	})
}

// flushLoop writes full batches as soon as they fill up and everything buffered every
// UsageFlushInterval, until Close (which writes the rest).
func (g *Gateway) flushLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.UsageFlushInterval)
	defer t.Stop()
	for {
		all := false
		select {
		case <-g.stop:
			return
		case <-t.C:
			all = true
		case <-g.usage.kick:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		if all {
			err = g.usage.flush(ctx)
		} else {
			err = g.usage.flushFull(ctx)
		}
		cancel()
		if err != nil {
			g.cfg.Log.Error("gateway: usage flush failed; events kept for the next try", "err", err)
		}
	}
}

// every runs fn every period, and also whenever kick fires, until Close.
func (g *Gateway) every(period time.Duration, kick <-chan struct{}, fn func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-g.stop:
				return
			case <-t.C:
			case <-kick:
			}
			fn()
		}
	}()
}

// Close stops the background workers, writes every buffered usage
// event and returns unspent leased credits. Call it after the HTTP server has shut down (so no call is still being
// recorded) and before the database closes.
func (g *Gateway) Close(ctx context.Context) error {
	var err error
	g.closeOnce.Do(func() {
		close(g.stop)
		g.wg.Wait()
		now := g.cfg.Now()
		err = errors.Join(g.usage.flush(ctx), g.credits.release(ctx, time.Time{}, now), g.limiter.Release(ctx, now, true))
	})
	return err
}

// Flush writes the buffered usage events now.
func (g *Gateway) Flush(ctx context.Context) error { return g.usage.flush(ctx) }

// RollUp adds every pending usage event to the hourly roll-ups and returns how many
// events it took, then deletes rolled-up raw events past the retention window (the
// roll-ups keep their totals). Safe to call on every instance at once.
func (g *Gateway) RollUp(ctx context.Context) (int, error) {
	const batch = 5000
	total := 0
	for {
		n, err := g.cfg.Store.RollUpUsage(ctx, batch)
		total += n
		if err != nil {
			return total, err
		}
		if n < batch {
			break
		}
	}
	if g.cfg.UsageRetention < 0 {
		return total, nil
	}
	before := g.cfg.Now().Add(-g.cfg.UsageRetention)
	for {
		n, err := g.cfg.Store.PruneUsageEvents(ctx, before, 10_000)
		if err != nil || n < 10_000 {
			return total, err
		}
	}
}

// Stats are counters for tests, benchmarks and metrics.
type Stats struct {
	UsageEvents    int64 // events written to the database
	UsageBatches   int64 // COPY batches that wrote them
	UsageDropped   int64 // events dropped because the buffer was full
	UsageRejected  int64 // events dropped because the database refused their content
	UsageBuffered  int   // events waiting in memory
	TokenCacheSize int
	CacheEnabled   bool // false while the revocation listener is not connected
}

// Stats returns the current counters.
func (g *Gateway) Stats() Stats {
	return Stats{
		UsageEvents:    g.usage.written.Load(),
		UsageBatches:   g.usage.batches.Load(),
		UsageDropped:   g.usage.dropped.Load(),
		UsageRejected:  g.usage.rejected.Load(),
		UsageBuffered:  g.usage.len(),
		TokenCacheSize: g.tokens.len(),
		CacheEnabled:   g.tokens.isEnabled(),
	}
}

// errNoUpstream is a call to an app whose developer set no upstream URL.
var errNoUpstream = errors.New("gateway: no upstream")

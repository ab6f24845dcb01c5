// Package handlers builds an instance (server.go: NewServer) and its HTTP router. This
// file mounts every surface and lists the middleware each group runs behind; each
// surface's Register method lists its own routes.
package handlers

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authgpts/authgpts/handlers/account"
	"github.com/authgpts/authgpts/handlers/admin"
	"github.com/authgpts/authgpts/handlers/authserver"
	"github.com/authgpts/authgpts/handlers/connections"
	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/handlers/portal"
	"github.com/authgpts/authgpts/handlers/signin"
	"github.com/authgpts/authgpts/handlers/usage"
	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/oauth/upstream"
	"github.com/authgpts/authgpts/static"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/emailcode"
	"github.com/authgpts/authgpts/store/notify"
	"github.com/authgpts/authgpts/store/ratelimit"
	"github.com/authgpts/authgpts/store/signingkeys"
	"github.com/authgpts/authgpts/store/webhook"
	"github.com/authgpts/authgpts/views/email/mailer"
)

// deps is everything the handlers need, built once by NewServer.
type deps struct {
	Store       *store.Store
	Mail        mailer.Mailer
	DevMailbox  *mailer.DevMailbox // set only in development mode
	Log         *slog.Logger
	Now         func() time.Time
	BaseURL     *url.URL
	Derived     oauth.DerivedKeys // the keys derived from AUTHGPTS_SECRET
	AdminEmails []string
	OTPLimits   store.OTPSendLimits
	// TrustedProxies (AUTHGPTS_TRUSTED_PROXIES) may set the client IP with X-Forwarded-For.
	TrustedProxies []string
	DevMode        bool              // development mode (DESIGN.md): http loopback base URL
	Keys           *signingkeys.Keys // signing keys (required)
	Listener       *notify.Listener  // the instance's LISTEN connection; nil: caches rely on their TTL
	Gateway        *gateway.Gateway  // the /gw proxy
	// Registrations limits dynamic client registrations per IP address (all instances).
	Registrations *ratelimit.Limiter
	// Fetcher fetches client ID metadata documents and client JWKS (SSRF-safe); nil: the
	// production policy. Tests set one whose allow-list names their local HTTPS server.
	Fetcher *safefetch.Fetcher
	// Connections is the vault of end users' third-party accounts.
	Connections *connections.Service
	// WebhookPolicy is where webhook endpoints may point (the portal checks URLs with it).
	WebhookPolicy webhook.Policy
	// Identity sources: the GitHub endpoints (empty: github.com and api.github.com; tests
	// point them at a local server) and the portal's own upstream sign-in providers
	// (AUTHGPTS_LOGIN_*; nil: not offered).
	GitHubWebURL, GitHubAPIURL string
	LoginOIDC, LoginGitHub     *signin.PortalProvider
}

func init() { gin.SetMode(gin.ReleaseMode) }

// newRouter wires every surface onto one Gin engine.
func newRouter(d deps) *gin.Engine {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.OTPLimits == (store.OTPSendLimits{}) {
		d.OTPLimits = emailcode.DefaultLimits
	}
	secure := d.BaseURL.Scheme == "https"
	sessions := web.NewSessions(d.Store, d.Derived, secure, d.Now)
	codes := &emailcode.Codes{
		Store:  d.Store,
		Mail:   d.Mail,
		Hasher: d.Derived.OTP,
		Limits: d.OTPLimits,
		Now:    d.Now,
	}

	r := gin.New()
	r.ContextWithFallback = true
	// Client IPs (rate limits, audit) come from the connection unless it is a trusted
	// proxy, whose X-Forwarded-For then names the client.
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		panic("handlers: trusted proxies were validated by the config: " + err.Error())
	}
	r.Use(web.RequestLog(d.Log), web.Recover(), web.Metrics(), web.Edge(secure))

	// Machine endpoints: no cookies, no browser-only headers.
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		if err := d.Store.Ping(ctx); err != nil {
			c.String(http.StatusServiceUnavailable, "database unreachable")
			return
		}
		c.String(http.StatusOK, "ok")
	})
	r.GET("/metrics", gin.WrapH(promhttp.Handler()))
	r.GET(static.Prefix+"*file", gin.WrapH(static.Handler()))
	// The gateway and its RFC 9728 metadata: bearer tokens only, no cookies, CORS.
	d.Gateway.Register(r)

	// Browser pages: security headers, sessions, a body cap and cross-origin protection.
	browser := r.Group("/", web.SecurityHeaders(secure), web.LimitBody(web.MaxFormBytes), web.SameOrigin(), web.ValidForm(), sessions.Load())
	browser.GET("/", func(c *gin.Context) { web.Redirect(c, "/dashboard") })

	fetcher := d.Fetcher
	if fetcher == nil {
		fetcher = safefetch.New(safefetch.Options{})
	}
	up := &signin.Upstream{
		Store: d.Store, Sessions: sessions, Discovery: upstream.NewDiscovery(fetcher, d.Now),
		BaseURL: d.BaseURL.String(), Derived: d.Derived, Secure: secure, Now: d.Now, Log: d.Log,
		GitHubWebURL: d.GitHubWebURL, GitHubAPIURL: d.GitHubAPIURL, PortalOIDC: d.LoginOIDC, PortalGitHub: d.LoginGitHub,
	}
	up.Init()
	(&signin.Handler{
		Store:       d.Store,
		Sessions:    sessions,
		Codes:       codes,
		DevMailbox:  d.DevMailbox,
		AdminEmails: d.AdminEmails,
		Now:         d.Now,
		Upstream:    up,
	}).Register(browser)

	// OAuth / OpenID Connect: machine endpoints on r (no cookies, CORS), the
	// authorization and consent pages on browser.
	authserver.New(authserver.Config{
		Store: d.Store, Keys: d.Keys, Listener: d.Listener, Issuer: d.BaseURL.String(),
		Derived: d.Derived, Now: d.Now, Log: d.Log, Fetcher: d.Fetcher, Registrations: d.Registrations,
		Connections: d.Connections,
	}).Register(r, browser)

	// The console answers 404 to everyone but admins, signed in or not.
	(&admin.Handler{Store: d.Store, Now: d.Now}).Register(browser)

	signedIn := browser.Group("/", web.RequireUser())
	(&portal.Handler{
		Store:       d.Store,
		Hasher:      d.Derived.TokenHash, // as the token endpoint hashes
		BaseURL:     d.BaseURL.String(),
		DevMode:     d.DevMode,
		Now:         d.Now,
		Webhooks:    portal.Webhooks{Key: d.Derived.WebhookSecrets, Policy: d.WebhookPolicy},
		Sources:     up,
		Connections: d.Connections,
	}).Register(signedIn)
	var operatorIssuers []string
	if d.LoginOIDC != nil {
		operatorIssuers = append(operatorIssuers, d.LoginOIDC.Issuer)
	}
	acct := &account.Handler{Store: d.Store, Sessions: sessions, Codes: codes, Now: d.Now, Mail: d.Mail,
		Hasher: d.Derived.TokenHash, BaseURL: d.BaseURL.String(), Connections: d.Connections,
		OperatorIssuers: operatorIssuers}
	acct.Register(signedIn)
	(&usage.Handler{Store: d.Store, Now: d.Now}).Register(signedIn)
	(&connections.Handler{Store: d.Store, Service: d.Connections, Now: d.Now, Managed: acct.ManagedIdentities}).Register(signedIn)

	// A wrong method on a known machine endpoint is a JSON 405 with Allow, since its
	// clients parse every answer (AI-CLIENTS.md M10); pages keep answering 404.
	r.HandleMethodNotAllowed = true
	r.NoMethod(web.SecurityHeaders(secure), web.MethodNotAllowed)
	r.NoRoute(web.SecurityHeaders(secure), sessions.Load(), web.NotFound)
	return r
}

package authserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/notify"
	"github.com/authgpts/authgpts/store/ratelimit"
	"github.com/authgpts/authgpts/store/signingkeys"
)

// Config is what the OAuth endpoints are built from.
type Config struct {
	Store    *store.Store
	Keys     *signingkeys.Keys
	Listener *notify.Listener  // nil: no cross-instance invalidation (the cache TTL still bounds staleness)
	Issuer   string            // AUTHGPTS_BASE_URL exactly
	Derived  oauth.DerivedKeys // the keys derived from AUTHGPTS_SECRET
	Now      func() time.Time
	Log      *slog.Logger
	// ClientCacheTTL bounds how long a cached client is used without a NOTIFY; zero means
	// DefaultClientCacheTTL.
	ClientCacheTTL time.Duration
	// Fetcher fetches client ID metadata documents and client JWKS; nil means the
	// production policy (safefetch.New with no allow-list). Tests pass one whose
	// allow-list names their local HTTPS server.
	Fetcher *safefetch.Fetcher
	// Registrations limits dynamic registrations per client IP address, across every
	// instance; RegistrationsPerMinute is that limit (zero: DefaultRegistrationsPerMinute).
	Registrations          *ratelimit.Limiter
	RegistrationsPerMinute int
	// Connections hands a user's provider tokens over by RFC 8693 token exchange (nil:
	// the grant is unsupported).
	Connections ConnectionExchange
}

// ConnectionExchange is the token exchange of handlers/connections: userID's token at
// the app's provider named by requestedType, or an oauth error to answer as it is.
type ConnectionExchange interface {
	ExchangeToken(ctx context.Context, appID, userID, requestedType string) (access string, expires time.Time, err error)
}

// DefaultRegistrationsPerMinute is generous on purpose: Claude and ChatGPT register from
// a few cloud addresses on behalf of all their users (AI-CLIENTS.md K4, C2).
const DefaultRegistrationsPerMinute = 60

// DefaultClientCacheTTL is the longest a client, its app, scopes or secrets may be served
// from memory after a change whose NOTIFY was missed.
const DefaultClientCacheTTL = 5 * time.Second

// Handler serves the OAuth and OpenID Connect endpoints.
type Handler struct {
	store   *store.Store
	keys    *signingkeys.Keys
	issuer  string
	hasher  oauth.Hasher
	tickets oauth.TicketSigner
	rotator oauth.Rotator
	now     func() time.Time
	log     *slog.Logger

	clients  *clientCache
	apps     *appCache
	grants   *grantStatus
	verified verifiedTokens
	docs     *documents

	connections            ConnectionExchange
	registrations          *ratelimit.Limiter // POST /oauth/register per client IP
	registrationsPerMinute int
	cimd                   *documentClients // client ID metadata documents, client JWKS
}

// New builds the handler and subscribes its caches to their NOTIFY channels. A failed
// subscription is logged: the caches' TTLs still bound staleness.
func New(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ClientCacheTTL == 0 {
		cfg.ClientCacheTTL = DefaultClientCacheTTL
	}
	if cfg.Fetcher == nil {
		cfg.Fetcher = safefetch.New(safefetch.Options{})
	}
	if cfg.RegistrationsPerMinute == 0 {
		cfg.RegistrationsPerMinute = DefaultRegistrationsPerMinute
	}
	h := &Handler{
		store:   cfg.Store,
		keys:    cfg.Keys,
		issuer:  cfg.Issuer,
		hasher:  cfg.Derived.TokenHash,
		tickets: cfg.Derived.Tickets,
		rotator: cfg.Derived.Rotator,
		now:     cfg.Now,
		log:     cfg.Log,
		clients: newClientCache(cfg.Store, cfg.ClientCacheTTL, cfg.Now),
		apps:    newAppCache(cfg.Store, cfg.ClientCacheTTL, cfg.Now),
		grants:  newGrantStatus(cfg.Store, cfg.Now),
		docs:    &documents{issuer: cfg.Issuer},

		registrations:          cfg.Registrations,
		connections:            cfg.Connections,
		registrationsPerMinute: cfg.RegistrationsPerMinute,
		cimd:                   &documentClients{fetch: cfg.Fetcher},
	}
	if cfg.Listener != nil {
		if err := cfg.Listener.Subscribe(store.ClientsChannel, h.clients.invalidate, h.clients.flush); err != nil {
			cfg.Log.Error("subscribe to client changes", "err", err)
		}
		if err := cfg.Listener.Subscribe(store.ClientsChannel, h.apps.invalidate, h.apps.flush); err != nil {
			cfg.Log.Error("subscribe to app changes", "err", err)
		}
		if err := cfg.Listener.Subscribe(store.RevocationsChannel, h.grants.onNotify, h.grants.resync); err != nil {
			cfg.Log.Error("subscribe to revocations", "err", err)
		}
	}
	return h
}

// Register mounts the machine endpoints on machine (no session, no cookies) and the
// authorization and consent pages on browser (sessions, security headers, same-origin
// POSTs).
func (h *Handler) Register(machine, browser gin.IRouter) {
	m := machine.Group("/", noSniff, web.LimitBody(oauth.MaxRequestBody))
	public := m.Group("/", web.CORS)
	for _, p := range []string{oauth.PathOpenIDConfiguration, oauth.PathServerMetadata} {
		public.GET(p, h.discovery)
		public.OPTIONS(p, web.Preflight)
	}
	public.GET(oauth.PathJWKS, h.jwks)
	public.OPTIONS(oauth.PathJWKS, web.Preflight)
	public.POST(oauth.PathToken, h.token)
	public.OPTIONS(oauth.PathToken, web.Preflight)
	public.POST(oauth.PathRevoke, h.revoke)
	public.OPTIONS(oauth.PathRevoke, web.Preflight)
	public.POST(oauth.PathRegister, h.register)
	public.OPTIONS(oauth.PathRegister, web.Preflight)
	public.GET(oauth.PathRegister+"/:client_id", h.registrationRead)
	public.PUT(oauth.PathRegister+"/:client_id", h.registrationUpdate)
	public.DELETE(oauth.PathRegister+"/:client_id", h.registrationDelete)
	public.OPTIONS(oauth.PathRegister+"/:client_id", web.Preflight)
	public.GET(oauth.PathUserInfo, h.userinfo)
	public.POST(oauth.PathUserInfo, h.userinfo)
	public.OPTIONS(oauth.PathUserInfo, web.Preflight)
	// Introspection is for resource servers, server to server: no CORS.
	m.POST(oauth.PathIntrospect, h.introspect)

	browser.GET(oauth.PathAuthorize, h.authorize)
	browser.POST(PathConsent, h.consent)
}

// PathConsent is where the consent form posts.
const PathConsent = "/oauth/consent"

func noSniff(c *gin.Context) {
	c.Writer.Header().Set("X-Content-Type-Options", "nosniff")
	c.Next()
}

// writeError is the one responder for JSON OAuth errors (RFC 6749 §5.2).
func writeError(c *gin.Context, err error, basicAuthUsed bool) {
	oauth.WriteError(c.Writer, protocolError(c, err), basicAuthUsed, web.Log(c))
	c.Abort()
}

// Answers for store errors that are no fault of the server's code.
var (
	errUnavailable = oauth.ErrTemporarilyUnavailable.WithDescription("The server cannot answer right now; nothing was changed. Try again in a few seconds.")
	errBadText     = oauth.ErrInvalidRequest.WithDescription("A parameter holds characters that are not accepted.")
)

// protocolError turns a store error that has an OAuth answer into it: the database
// being unreachable is temporarily_unavailable (503 with Retry-After, so that clients
// retry rather than drop their credentials), text PostgreSQL refuses is invalid_request.
// Anything else is left for WriteError to log and answer as server_error.
func protocolError(c *gin.Context, err error) error {
	switch {
	case errors.Is(err, store.ErrUnavailable):
		web.Log(c).Warn("database unavailable", "err", err)
		return errUnavailable
	case errors.Is(err, store.ErrInvalidInput):
		return errBadText
	}
	return err
}

// writeJSON answers 200 with a no-store JSON body.
func writeJSON(c *gin.Context, v any) {
	oauth.WriteJSON(c.Writer, http.StatusOK, v)
	c.Abort()
}

// newJTI returns a random 128-bit token ID.
func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// mustJSON encodes audit details built from plain values, which always encode.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{}`)
	}
	return b
}

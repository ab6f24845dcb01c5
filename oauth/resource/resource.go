package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgpts/authgpts/oauth"
)

// AssertionHeader is the header in which the AuthGPTs gateway sends its signed assertion.
const AssertionHeader = "X-AuthGPTs-Assertion"

// Config configures a Verifier.
type Config struct {
	// Issuer is the AuthGPTs base URL, the iss of its tokens (no trailing slash).
	Issuer string
	// Audience lists the resource URLs this API accepts tokens for, e.g.
	// https://auth.example.com/gw/notes. Required for Require (RFC 9068 §4: a resource
	// server must refuse tokens meant for another resource).
	Audience []string
	// ResourceMetadata is the RFC 9728 metadata URL named in 401 and 403 challenges
	// (optional).
	ResourceMetadata string
	// HTTPClient fetches discovery and JWKS (default: 10 s timeout).
	HTTPClient *http.Client
	// MinRefreshInterval is the least time between two JWKS fetches caused by unknown
	// key IDs (default 30 s).
	MinRefreshInterval time.Duration
	// MaxKeyAge is how long a fetched JWKS is used before it is fetched again, so
	// retired keys stop being trusted (default 1 h).
	MaxKeyAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Claims describe the caller of a verified request.
type Claims struct {
	Subject    string    // the user ID, or the client ID for client_credentials tokens
	ClientID   string    // the OAuth client that called
	Scopes     []string  // granted scopes
	Email      string    // only when the email scope was granted
	GrantID    string    // the user's grant; empty for client_credentials and gateway assertions
	Audience   []string  // the resources the token is for
	Expiry     time.Time // when the token or assertion expires
	ViaGateway bool      // verified from the gateway's assertion, not from an access token
}

// HasScope reports whether scope was granted.
func (c Claims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

type ctxKey struct{}

// WithClaims returns a context carrying c (for adapters and tests).
func WithClaims(ctx context.Context, c Claims) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the Claims that Require or RequireGateway stored.
func FromContext(ctx context.Context) (Claims, bool) {
	c, ok := ctx.Value(ctxKey{}).(Claims)
	return c, ok
}

// Verifier verifies AuthGPTs access tokens and gateway assertions. Safe for concurrent use.
type Verifier struct {
	cfg  Config
	keys atomic.Pointer[keySet]

	mu          sync.Mutex // one fetch at a time
	lastAttempt time.Time
}

type keySet struct {
	ks      *oauth.KeySet
	fetched time.Time
}

// New returns a Verifier. Keys are fetched on first use, so New does no I/O.
func New(cfg Config) (*Verifier, error) {
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	if !strings.HasPrefix(cfg.Issuer, "https://") && !strings.HasPrefix(cfg.Issuer, "http://") {
		return nil, errors.New("resource: Issuer must be the AuthGPTs base URL, e.g. https://auth.example.com")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = 30 * time.Second
	}
	if cfg.MaxKeyAge == 0 {
		cfg.MaxKeyAge = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg}, nil
}

// Errors returned by the Verifier are *Error values; WriteError writes them.
type Error struct {
	Status      int
	Code        string // RFC 6750 §3.1 code; empty when the request had no token
	Description string
	Scope       string // the scopes needed, for insufficient_scope
}

func (e *Error) Error() string { return "resource: " + e.Code + ": " + e.Description }

func errNoToken() *Error {
	return &Error{Status: http.StatusUnauthorized, Description: "This API needs an access token: send Authorization: Bearer <token>."}
}

func errInvalidToken(desc string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "invalid_token", Description: desc}
}

// Authenticate verifies the request's bearer token and the scopes it needs.
func (v *Verifier) Authenticate(r *http.Request, scopes ...string) (Claims, error) {
	// RFC 6750 §2.1 only: a token in the URL ends up in logs and Referer headers.
	if r.URL.Query().Has("access_token") {
		return Claims{}, &Error{Status: http.StatusBadRequest, Code: "invalid_request",
			Description: "Send the access token in the Authorization header, never in the URL."}
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return Claims{}, errNoToken()
	}
	token, ok := oauth.BearerToken(auth)
	if !ok {
		return Claims{}, errInvalidToken("The Authorization header must hold a Bearer token.")
	}
	c, err := v.Verify(r.Context(), token)
	if err != nil {
		return Claims{}, err
	}
	return c, checkScopes(c, scopes)
}

// Verify verifies an access token: signature with the issuer's JWKS, typ at+jwt, iss,
// exp/nbf, and aud against Config.Audience. Scopes are the caller's to check.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	if len(v.cfg.Audience) == 0 {
		return Claims{}, errors.New("resource: Config.Audience is empty: set the resource URL(s) of this API")
	}
	ks, err := v.keysFor(ctx, token)
	if err != nil {
		return Claims{}, err
	}
	ac, err := ks.VerifyAccessToken(token, v.cfg.Now(), v.cfg.Issuer)
	if err != nil {
		return Claims{}, errInvalidToken(description(err))
	}
	if !slices.ContainsFunc(v.cfg.Audience, ac.HasAudience) {
		return Claims{}, errInvalidToken("The access token is for another resource.")
	}
	scopes, _ := oauth.ParseScope(ac.Scope)
	c := Claims{Subject: ac.Subject, ClientID: ac.ClientID, Scopes: scopes, GrantID: ac.GrantID,
		Audience: ac.Audience, Expiry: ac.Expiry}
	if slices.Contains(scopes, "email") {
		c.Email = ac.Email
	}
	return c, nil
}

// AuthenticateGateway verifies the gateway's assertion on a request the AuthGPTs gateway
// forwarded to this API, whose upstream base URL (as set in the portal) is upstream, and
// the scopes it needs.
func (v *Verifier) AuthenticateGateway(r *http.Request, upstream string, scopes ...string) (Claims, error) {
	raw := r.Header.Get(AssertionHeader)
	if raw == "" {
		return Claims{}, &Error{Status: http.StatusUnauthorized,
			Description: "This API is only reachable through the AuthGPTs gateway."}
	}
	c, err := v.VerifyAssertion(r.Context(), raw, upstream)
	if err != nil {
		return Claims{}, err
	}
	return c, checkScopes(c, scopes)
}

// VerifyAssertion verifies a gateway assertion meant for upstream.
func (v *Verifier) VerifyAssertion(ctx context.Context, assertion, upstream string) (Claims, error) {
	ks, err := v.keysFor(ctx, assertion)
	if err != nil {
		return Claims{}, err
	}
	a, err := ks.VerifyGatewayAssertion(assertion, v.cfg.Now(), v.cfg.Issuer, upstream)
	if err != nil {
		return Claims{}, errInvalidToken(description(err))
	}
	scopes, _ := oauth.ParseScope(a.Scope)
	return Claims{Subject: a.Subject, ClientID: a.ClientID, Scopes: scopes, Email: a.Email,
		Expiry: a.Expiry, ViaGateway: true}, nil
}

func checkScopes(c Claims, need []string) error {
	var missing []string
	for _, s := range need {
		if !c.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// RFC 6750 §3.1: insufficient_scope, naming the scopes needed.
	return &Error{Status: http.StatusForbidden, Code: "insufficient_scope",
		Description: "This call needs the " + strings.Join(missing, " ") + " scope.", Scope: strings.Join(need, " ")}
}

func description(err error) string {
	var oe oauth.Error
	if errors.As(err, &oe) && oe.Description != "" {
		return oe.Description
	}
	return "The token is invalid."
}

// Require returns middleware that lets a request through only with a valid access token
// holding every scope given; the handler reads the caller with FromContext.
func (v *Verifier) Require(scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := v.Authenticate(r, scopes...)
			if err != nil {
				v.WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
		})
	}
}

// RequireGateway returns middleware that lets a request through only with a valid gateway
// assertion for upstream holding every scope given.
func (v *Verifier) RequireGateway(upstream string, scopes ...string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := v.AuthenticateGateway(r, upstream, scopes...)
			if err != nil {
				v.WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), c)))
		})
	}
}

// WriteError answers err as RFC 6750 JSON ({"error","error_description"}) with a Bearer
// challenge naming Config.ResourceMetadata; anything that is not an *Error is a 500.
func (v *Verifier) WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "The token could not be checked."}
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden || e.Code == "invalid_request" {
		w.Header().Set("WWW-Authenticate", oauth.BearerChallenge{Error: e.Code, Description: e.Description,
			Scope: e.Scope, ResourceMetadata: v.cfg.ResourceMetadata}.String())
	}
	code := e.Code
	if code == "" {
		code = "unauthorized"
	}
	oauth.WriteJSON(w, e.Status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
		Scope       string `json:"scope,omitempty"`
	}{code, e.Description, e.Scope})
}

// keysFor returns the key set to verify token with, fetching the JWKS when there is none
// yet, when it is older than MaxKeyAge, or when the token names a key it lacks (key
// rotation) — the last two at most once per MinRefreshInterval.
func (v *Verifier) keysFor(ctx context.Context, token string) (*oauth.KeySet, error) {
	now := v.cfg.Now()
	cur := v.keys.Load()
	if cur != nil && cur.ks.HasKey(oauth.TokenKeyID(token)) && now.Sub(cur.fetched) < v.cfg.MaxKeyAge {
		return cur.ks, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if latest := v.keys.Load(); latest != cur && latest != nil {
		return latest.ks, nil // another request just fetched
	}
	if cur != nil && now.Sub(v.lastAttempt) < v.cfg.MinRefreshInterval {
		return cur.ks, nil // rate limited: verify with what we have (an unknown kid fails)
	}
	v.lastAttempt = now
	ks, err := v.fetch(ctx)
	if err != nil {
		if cur != nil {
			return cur.ks, nil
		}
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "The authorization server's keys cannot be fetched right now."}
	}
	v.keys.Store(&keySet{ks: ks, fetched: now})
	return ks, nil
}

// fetch reads discovery, then the JWKS it names.
func (v *Verifier) fetch(ctx context.Context) (*oauth.KeySet, error) {
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := v.getJSON(ctx, v.cfg.Issuer+"/.well-known/openid-configuration", &disc); err != nil {
		return nil, err
	}
	// OpenID Connect Discovery §4.3: the issuer in the document must be the one asked for.
	if disc.Issuer != v.cfg.Issuer || disc.JWKSURI == "" {
		return nil, fmt.Errorf("resource: discovery issuer %q does not match %q, or names no jwks_uri", disc.Issuer, v.cfg.Issuer)
	}
	body, err := v.get(ctx, disc.JWKSURI)
	if err != nil {
		return nil, err
	}
	return oauth.NewVerifyingKeySet(body)
}

func (v *Verifier) getJSON(ctx context.Context, url string, dst any) error {
	body, err := v.get(ctx, url)
	if err != nil {
		return err
	}
	return json.Unmarshal(body, dst)
}

func (v *Verifier) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("resource: GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("resource: GET %s: status %d", url, resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

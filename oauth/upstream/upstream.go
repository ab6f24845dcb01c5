// Package upstream is the protocol side of identity sources (DESIGN.md, "Your users sign
// in with your own auth"): OpenID Connect discovery of an upstream issuer with go-oidc,
// cached per issuer; the GitHub endpoints; and the signed login requests and assertions
// of a developer's own login page. It has no Gin and no SQL: handlers/signin drives it.
package upstream

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/safefetch"
)

// CallbackPath is the one redirect URI of every upstream OAuth/OIDC flow, for every app.
const CallbackPath = "/login/upstream/callback"

// OwnCallbackPath is where a developer's own login page sends the browser back.
const OwnCallbackPath = "/login/own/callback"

// StateTTL is how long an outbound sign-in may take (state, PKCE verifier, nonce).
const StateTTL = 10 * time.Minute

// discoveryTTL is how long a fetched discovery document (and its JWKS cache) is reused.
const discoveryTTL = 10 * time.Minute

// OwnIssuer is the issuer of identities asserted by an app's own login page: it names
// the app, because only that app's signing key vouches for them (another developer's
// page must never be able to assert a subject for this app's users). It is also the
// "aud" the page's assertions must carry.
func OwnIssuer(baseURL, appID string) string { return baseURL + "/login/own/" + appID }

// Provider is a discovered OpenID Connect provider.
type Provider struct {
	OIDC *oidc.Provider
	// ISSParameter is the provider's authorization_response_iss_parameter_supported
	// (RFC 9207 §3): when true a callback without iss is refused.
	ISSParameter bool
}

// Discovery fetches and caches OpenID Connect providers through the SSRF-safe client.
type Discovery struct {
	client *http.Client
	now    func() time.Time
	mu     sync.Mutex
	m      map[string]cached
}

type cached struct {
	p       *Provider
	fetched time.Time
}

// NewDiscovery returns a Discovery that fetches with f's policy.
func NewDiscovery(f *safefetch.Fetcher, now func() time.Time) *Discovery {
	if now == nil {
		now = time.Now
	}
	return &Discovery{client: f.Client(), now: now, m: map[string]cached{}}
}

// Client is the SSRF-safe HTTP client the flows use for token exchanges and user APIs.
func (d *Discovery) Client() *http.Client { return d.client }

// Context returns ctx carrying the SSRF-safe client for go-oidc and x/oauth2.
func (d *Discovery) Context(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, d.client)
}

// Provider returns the discovered provider for issuer, fetched at most every 10 minutes.
func (d *Discovery) Provider(ctx context.Context, issuer string) (*Provider, error) {
	now := d.now()
	d.mu.Lock()
	c, ok := d.m[issuer]
	d.mu.Unlock()
	if ok && now.Sub(c.fetched) < discoveryTTL {
		return c.p, nil
	}
	p, err := d.Discover(ctx, issuer)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.m[issuer] = cached{p: p, fetched: now}
	d.mu.Unlock()
	return p, nil
}

// Discover fetches issuer's discovery document now and checks it: HTTPS, issuer equal
// to the URL byte for byte (go-oidc, OpenID Connect Discovery §4.3), the authorization,
// token and JWKS endpoints present, the code flow and S256 offered when it says what it
// offers. Its error message is safe to show to the developer next to the field.
func (d *Discovery) Discover(ctx context.Context, issuer string) (*Provider, error) {
	if err := ValidIssuerURL(issuer); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, d.client), issuer)
	if err != nil {
		return nil, discoveryError(err)
	}
	var meta struct {
		JWKSURI          string   `json:"jwks_uri"`
		ResponseTypes    []string `json:"response_types_supported"`
		Challenges       []string `json:"code_challenge_methods_supported"`
		ISSParameter     bool     `json:"authorization_response_iss_parameter_supported"`
		AuthorizationURL string   `json:"authorization_endpoint"`
		TokenURL         string   `json:"token_endpoint"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, errors.New("The discovery document is not valid JSON.")
	}
	switch {
	case meta.AuthorizationURL == "" || meta.TokenURL == "" || meta.JWKSURI == "":
		return nil, errors.New("The discovery document lacks authorization_endpoint, token_endpoint or jwks_uri.")
	case !strings.HasPrefix(meta.AuthorizationURL, "https://") || !strings.HasPrefix(meta.TokenURL, "https://") || !strings.HasPrefix(meta.JWKSURI, "https://"):
		return nil, errors.New("The provider's endpoints must all be https.")
	case len(meta.ResponseTypes) > 0 && !slices.Contains(meta.ResponseTypes, "code"):
		return nil, errors.New("The provider does not offer the authorization code flow (response_types_supported).")
	case len(meta.Challenges) > 0 && !slices.Contains(meta.Challenges, "S256"):
		return nil, errors.New("The provider does not offer PKCE with S256 (code_challenge_methods_supported).")
	}
	return &Provider{OIDC: p, ISSParameter: meta.ISSParameter}, nil
}

// ValidIssuerURL checks the shape of an issuer URL: https, a host, no query, fragment
// or credentials (OpenID Connect Discovery §2). Development mode gets no exception: the
// server fetches it through the SSRF guard, which refuses loopback and http alike.
func ValidIssuerURL(issuer string) error {
	u, err := url.Parse(issuer)
	switch {
	case err != nil || u.Host == "" || issuer != strings.TrimSpace(issuer):
		return errors.New("Enter the issuer URL, like https://accounts.example.com.")
	case u.Scheme != "https":
		return errors.New("The issuer must be an https URL.")
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return errors.New("The issuer URL has no query, fragment or credentials.")
	}
	return nil
}

func discoveryError(err error) error {
	var mismatch *oidc.IssuerMismatchError
	switch {
	case errors.As(err, &mismatch):
		return fmt.Errorf("The discovery document names the issuer %q, not this URL; enter exactly the issuer it names.", oauth.Truncate(mismatch.Discovered, 200))
	case errors.Is(err, safefetch.ErrForbiddenAddr):
		return errors.New("The issuer's host resolves to a private or loopback address; it must be reachable on the public internet.")
	case errors.Is(err, safefetch.ErrNotHTTPS):
		return errors.New("The issuer must be an https URL.")
	case errors.Is(err, safefetch.ErrRedirect):
		return errors.New("The discovery URL redirects; enter the issuer it redirects to.")
	case errors.Is(err, safefetch.ErrTooLarge):
		return errors.New("The discovery document is too large.")
	case strings.Contains(err.Error(), "404"):
		return errors.New("No discovery document at <issuer>/.well-known/openid-configuration (404).")
	case strings.Contains(err.Error(), "decode"), strings.Contains(err.Error(), "unmarshal"), strings.Contains(err.Error(), "json"):
		return errors.New("The discovery document at <issuer>/.well-known/openid-configuration is not valid JSON.")
	}
	return errors.New("We could not fetch <issuer>/.well-known/openid-configuration: the server did not answer with a discovery document.")
}

// IDClaims are the verified claims of an upstream ID token that sign-in uses.
type IDClaims struct {
	Subject       string
	Email         string
	EmailVerified any // bool, or the string "true" some providers send
}

// ErrNonceMismatch is returned for an ID token minted for another sign-in.
var ErrNonceMismatch = errors.New("ID token: the nonce is not this sign-in's")

// VerifyIDToken checks raw with go-oidc against the provider's discovery and JWKS:
// signature (an algorithm the provider offers), iss equal to the issuer, aud containing
// clientID, exp not passed (at now()); then the nonce of this sign-in (OpenID Connect
// Core §3.1.3.7). ctx carries the HTTP client for the JWKS (Discovery.Context).
func VerifyIDToken(ctx context.Context, p *Provider, clientID, raw, nonce string, now func() time.Time) (IDClaims, error) {
	v := p.OIDC.Verifier(&oidc.Config{ClientID: clientID, Now: now})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return IDClaims{}, fmt.Errorf("ID token: %s", idTokenReason(err))
	}
	if idt.Nonce == "" || nonce == "" || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return IDClaims{}, ErrNonceMismatch
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return IDClaims{}, errors.New("ID token: malformed claims")
	}
	if idt.Subject == "" || len(idt.Subject) > 255 {
		return IDClaims{}, errors.New("ID token: subject missing or longer than 255 characters")
	}
	return IDClaims{Subject: idt.Subject, Email: claims.Email, EmailVerified: claims.EmailVerified}, nil
}

// idTokenReason names what go-oidc refused, for the log, without the token.
func idTokenReason(err error) string {
	var exp *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &exp):
		return "expired"
	case strings.Contains(msg, "audience"):
		return "wrong audience"
	case strings.Contains(msg, "issuer"):
		return "wrong issuer"
	case strings.Contains(msg, "signature"):
		return "bad signature"
	}
	return "malformed"
}

package signin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"golang.org/x/oauth2"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/upstream"
	"github.com/authgpts/authgpts/store"
)

// Upstream is the identity-source side of sign-in: it sends a browser to an app's (or
// the portal's) upstream provider and turns the answer into a signed-in local user.
type Upstream struct {
	Store     *store.Store
	Sessions  *web.Sessions
	Discovery *upstream.Discovery
	BaseURL   string            // AUTHGPTS_BASE_URL, no trailing slash
	Derived   oauth.DerivedKeys // UpstreamState and UpstreamSecret are used
	Secure    bool              // https: the binding cookie is Secure
	Now       func() time.Time
	Log       *slog.Logger
	// GitHubWebURL and GitHubAPIURL are github.com and api.github.com; tests point them
	// at a local server implementing the same OAuth and user API.
	GitHubWebURL string
	GitHubAPIURL string
	// PortalOIDC and PortalGitHub are the operator's providers for the portal's own
	// sign-in (AUTHGPTS_LOGIN_*); nil when not configured.
	PortalOIDC   *PortalProvider
	PortalGitHub *PortalProvider

	stateHasher oauth.Hasher
	sealKey     []byte
}

// PortalProvider is an operator-configured provider for the portal's sign-in.
type PortalProvider struct {
	Issuer       string // OIDC only
	ClientID     string
	ClientSecret string
}

// Provider names of the portal's own upstream sign-in.
const (
	ProviderPortalOIDC   = "portal-oidc"
	ProviderPortalGitHub = "portal-github"
)

// PathUpstreamStart starts an upstream sign-in (GET, app= or provider=, return_to=).
const PathUpstreamStart = "/login/upstream"

const bindingCookie = "authgpts_login_binding"

// Init derives the keys; call it once before use.
func (u *Upstream) Init() {
	u.stateHasher = u.Derived.UpstreamState
	u.sealKey = u.Derived.UpstreamSecret
	if u.GitHubWebURL == "" {
		u.GitHubWebURL = "https://github.com"
	}
	if u.GitHubAPIURL == "" {
		u.GitHubAPIURL = "https://api.github.com"
	}
	if u.Now == nil {
		u.Now = time.Now
	}
}

// SealKey is the key that seals identity-source secrets (the portal stores them).
func (u *Upstream) SealKey() []byte { return u.sealKey }

// source is an identity source resolved for one flow, secrets opened.
type source struct {
	kind         string // oidc, github, own
	issuer       string // the issuer of the identities it yields
	clientID     string
	clientSecret string
	scopes       []string
	ownLoginURL  string
	ownSecret    []byte
	ownPublicKey string
	appID        string
}

var errNoSource = errors.New("signin: no such identity source")

func (u *Upstream) resolve(ctx context.Context, provider, appID string) (source, error) {
	switch provider {
	case ProviderPortalOIDC:
		if u.PortalOIDC == nil {
			return source{}, errNoSource
		}
		p := u.PortalOIDC
		return source{kind: store.SourceOIDC, issuer: p.Issuer, clientID: p.ClientID, clientSecret: p.ClientSecret,
			scopes: []string{oidc.ScopeOpenID, "email", "profile"}}, nil
	case ProviderPortalGitHub:
		if u.PortalGitHub == nil {
			return source{}, errNoSource
		}
		p := u.PortalGitHub
		return source{kind: store.SourceGitHub, issuer: store.IssuerGitHub, clientID: p.ClientID, clientSecret: p.ClientSecret,
			scopes: []string{"read:user", "user:email"}}, nil
	}
	if !store.ValidUUID(appID) {
		return source{}, errNoSource
	}
	src, err := u.Store.IdentitySourceByApp(ctx, appID)
	if err != nil {
		return source{}, err
	}
	s := source{kind: src.Kind, clientID: src.ClientID, scopes: strings.Fields(src.Scopes), appID: appID,
		ownLoginURL: src.OwnLoginURL, ownPublicKey: src.OwnPublicKey}
	if len(src.ClientSecretSealed) > 0 {
		b, err := oauth.OpenSecret(u.sealKey, SealAD(appID, "client_secret"), src.ClientSecretSealed)
		if err != nil {
			return source{}, err
		}
		s.clientSecret = string(b)
	}
	if len(src.OwnSecretSealed) > 0 {
		if s.ownSecret, err = oauth.OpenSecret(u.sealKey, SealAD(appID, "own_secret"), src.OwnSecretSealed); err != nil {
			return source{}, err
		}
	}
	switch src.Kind {
	case store.SourceOIDC:
		s.issuer = src.Issuer
		if len(s.scopes) == 0 {
			s.scopes = []string{oidc.ScopeOpenID, "email"}
		}
		if !slices.Contains(s.scopes, oidc.ScopeOpenID) {
			s.scopes = append([]string{oidc.ScopeOpenID}, s.scopes...)
		}
	case store.SourceGitHub:
		s.issuer = store.IssuerGitHub
		if len(s.scopes) == 0 {
			s.scopes = []string{"read:user", "user:email"}
		}
	case store.SourceOwn:
		s.issuer = upstream.OwnIssuer(u.BaseURL, appID)
	default:
		return source{}, errNoSource
	}
	return s, nil
}

// SealAD is the associated data of an identity-source secret: the row (app ID) and the
// column, so a ciphertext moved to another app or column does not open.
func SealAD(appID, column string) string { return appID + "/" + column }

// RequiredIssuer is the issuer the signed-in user must come from to use an app whose
// identity source is src ("" = an email-code account).
func RequiredIssuer(baseURL string, src store.IdentitySource) string {
	switch src.Kind {
	case store.SourceOIDC:
		return src.Issuer
	case store.SourceGitHub:
		return store.IssuerGitHub
	case store.SourceOwn:
		return upstream.OwnIssuer(baseURL, src.AppID)
	}
	return ""
}

// Messages of the upstream sign-in pages: fixed strings.
const (
	msgStateInvalid  = "This sign-in link has expired, was already used, or was opened in another browser."
	hintStateInvalid = "Go back to the app that sent you and start again."
	msgUpstreamError = "The sign-in at the provider did not complete."
	msgIDToken       = "The provider's answer could not be verified, so you were not signed in."
	hintRetry        = "Start again from the app that sent you. If it keeps happening, tell its developer."
)

// start creates the state and sends the browser to the provider.
func (u *Upstream) start(c *gin.Context) {
	ctx := c.Request.Context()
	returnTo := web.SafeReturnTo(c.Query("return_to"), "/dashboard")
	provider := c.Query("provider")
	again := c.Query("prompt") == "login" // "Not you?", prompt=login or max_age at the app
	src, err := u.resolve(ctx, provider, c.Query("app"))
	if errors.Is(err, errNoSource) || errors.Is(err, store.ErrNotFound) {
		web.NotFound(c)
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	if provider == "" {
		provider = src.kind
	}
	now := u.Now()
	state := oauth.NewToken("")
	err = u.Store.CreateUpstreamLogin(ctx, store.NewUpstreamLogin{
		StateHash: u.stateHasher.Hash("state:" + state), BrowserHash: u.stateHasher.Hash("browser:" + u.binding(c)),
		AppID: src.appID, Provider: provider, ReturnTo: returnTo, ExpiresAt: now.Add(upstream.StateTTL),
	}, now)
	if err != nil {
		web.Fail(c, err)
		return
	}
	verifier, nonce := u.derive("pkce", state), u.derive("nonce", state)
	var location string
	switch src.kind {
	case store.SourceOIDC:
		p, err := u.Discovery.Provider(ctx, src.issuer)
		if err != nil {
			web.Log(c).Warn("upstream discovery failed", "issuer", src.issuer, "err", err)
			web.Error(c, http.StatusBadGateway, "The sign-in provider of this app cannot be reached right now.", hintRetry)
			return
		}
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
		if again {
			opts = append(opts, oauth2.SetAuthURLParam("prompt", "login")) // OpenID Connect Core §3.1.2.1
		}
		location = u.oauth2Config(src, p.OIDC.Endpoint()).AuthCodeURL(state, opts...)
	case store.SourceGitHub:
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
		if again {
			opts = append(opts, oauth2.SetAuthURLParam("prompt", "select_account"))
		}
		location = u.oauth2Config(src, u.githubEndpoint()).AuthCodeURL(state, opts...)
	case store.SourceOwn:
		if len(src.ownSecret) == 0 || src.ownLoginURL == "" {
			web.Error(c, http.StatusServiceUnavailable, "This app's login page is not set up yet.", "Tell its developer.")
			return
		}
		req, err := upstream.SignLoginRequest(src.ownSecret, upstream.LoginRequest{
			Issuer: u.BaseURL, Audience: src.ownLoginURL, State: state, Nonce: nonce,
			ReturnTo: u.BaseURL + upstream.OwnCallbackPath, AssertionAudience: src.issuer,
			IssuedAt: now.Unix(), Expiry: now.Add(upstream.LoginRequestTTL).Unix(),
		})
		if err != nil {
			web.Fail(c, err)
			return
		}
		location = addQuery(src.ownLoginURL, "login_request", req)
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, location)
	c.Abort()
}

// consume burns the state named by the request and checks that it is live and was
// started in this browser. Every failure is the same page: a replayed, foreign, expired
// or unknown state tells an attacker nothing.
func (u *Upstream) consume(c *gin.Context, state string) (store.UpstreamLogin, bool) {
	if state == "" || len(state) > 100 {
		web.BadRequest(c, msgStateInvalid, hintStateInvalid)
		return store.UpstreamLogin{}, false
	}
	now := u.Now()
	l, err := u.Store.ConsumeUpstreamLogin(c.Request.Context(), u.stateHasher.Hash("state:"+state), now)
	if errors.Is(err, store.ErrNotFound) {
		web.Log(c).Warn("upstream sign-in: unknown or reused state")
		web.BadRequest(c, msgStateInvalid, hintStateInvalid)
		return l, false
	}
	if err != nil {
		web.Fail(c, err)
		return l, false
	}
	cookie, _ := c.Cookie(bindingCookie)
	if cookie == "" || !hmac.Equal(l.BrowserHash, u.stateHasher.Hash("browser:"+cookie)) {
		web.Log(c).Warn("upstream sign-in: state from another browser")
		web.BadRequest(c, msgStateInvalid, hintStateInvalid)
		return l, false
	}
	if !now.Before(l.ExpiresAt) {
		web.Log(c).Info("upstream sign-in: state expired")
		web.BadRequest(c, msgStateInvalid, hintStateInvalid)
		return l, false
	}
	return l, true
}

// identity is what a provider vouched for.
type identity struct {
	issuer, subject, email string
}

// callback handles the provider's redirect for OIDC and GitHub.
func (u *Upstream) callback(c *gin.Context) {
	q := c.Request.URL.Query()
	l, ok := u.consume(c, q.Get("state"))
	if !ok {
		return
	}
	ctx := c.Request.Context()
	src, err := u.resolve(ctx, l.Provider, l.AppID)
	// The app's source must still be the one the flow started with.
	if err != nil || src.kind == store.SourceOwn || (l.AppID != "" && l.Provider != src.kind) {
		web.BadRequest(c, msgStateInvalid, hintStateInvalid)
		return
	}
	if e := q.Get("error"); e != "" {
		web.Log(c).Info("upstream sign-in: provider answered an error", "error", oauth.Truncate(e, 64))
		msg := msgUpstreamError
		if e == "access_denied" {
			msg = "You cancelled the sign-in at the provider, so you were not signed in."
		}
		web.Error(c, http.StatusBadRequest, msg, hintRetry)
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 2048 {
		web.BadRequest(c, msgUpstreamError, hintRetry)
		return
	}
	var id identity
	switch src.kind {
	case store.SourceOIDC:
		id, err = u.oidcIdentity(ctx, src, q, code, q.Get("state"))
	case store.SourceGitHub:
		id, err = u.githubIdentity(ctx, src, code, q.Get("state"))
	}
	if err != nil {
		web.Log(c).Warn("upstream sign-in refused", "provider", l.Provider, "issuer", src.issuer, "reason", err.Error())
		web.Error(c, http.StatusBadRequest, msgIDToken, hintRetry)
		return
	}
	u.finish(c, id, l)
}

// Reasons a callback is refused, for the log (never holding a token or code).
var (
	errISSMismatch = errors.New("RFC 9207 iss parameter differs from the provider's issuer")
	errISSMissing  = errors.New("RFC 9207 iss parameter missing although the provider sends it")
	errExchange    = errors.New("the provider refused the code exchange")
	errNoIDToken   = errors.New("the token response holds no id_token")
	errGitHubUser  = errors.New("the GitHub user API did not answer")
)

func (u *Upstream) oidcIdentity(ctx context.Context, src source, q url.Values, code, state string) (identity, error) {
	p, err := u.Discovery.Provider(ctx, src.issuer)
	if err != nil {
		return identity{}, err
	}
	// RFC 9207 §2.4: compare iss with the issuer this flow was started for, byte for byte.
	if iss := q.Get("iss"); iss != "" && iss != src.issuer {
		return identity{}, errISSMismatch
	} else if iss == "" && p.ISSParameter {
		return identity{}, errISSMissing
	}
	tok, err := u.oauth2Config(src, p.OIDC.Endpoint()).Exchange(u.Discovery.Context(ctx), code, oauth2.VerifierOption(u.derive("pkce", state)))
	if err != nil {
		return identity{}, fmt.Errorf("%w: %s", errExchange, exchangeReason(err))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return identity{}, errNoIDToken
	}
	return u.verifyIDToken(ctx, p, src, raw, u.derive("nonce", state))
}

// verifyIDToken checks the ID token (upstream.VerifyIDToken) and keeps its email only
// when the upstream said it is verified.
func (u *Upstream) verifyIDToken(ctx context.Context, p *upstream.Provider, src source, raw, nonce string) (identity, error) {
	c, err := upstream.VerifyIDToken(u.Discovery.Context(ctx), p, src.clientID, raw, nonce, u.Now)
	if err != nil {
		return identity{}, err
	}
	return identity{issuer: src.issuer, subject: c.Subject, email: verifiedEmail(c.Email, c.EmailVerified)}, nil
}

// verifiedEmail returns the normalised email when the upstream said it is verified
// (true, or "true" as some providers send), else "".
func verifiedEmail(email string, verified any) string {
	switch v := verified.(type) {
	case bool:
		if !v {
			return ""
		}
	case string:
		if v != "true" {
			return ""
		}
	default:
		return ""
	}
	e, ok := store.NormalizeEmail(email)
	if !ok {
		return ""
	}
	return e
}

func (u *Upstream) githubEndpoint() oauth2.Endpoint {
	return oauth2.Endpoint{AuthURL: u.GitHubWebURL + "/login/oauth/authorize", TokenURL: u.GitHubWebURL + "/login/oauth/access_token",
		AuthStyle: oauth2.AuthStyleInParams}
}

// githubIdentity exchanges the code, then reads /user (the numeric ID is the subject)
// and /user/emails (the primary email, when GitHub marks it verified).
func (u *Upstream) githubIdentity(ctx context.Context, src source, code, state string) (identity, error) {
	cfg := u.oauth2Config(src, u.githubEndpoint())
	ctx = u.Discovery.Context(ctx)
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(u.derive("pkce", state)))
	if err != nil {
		return identity{}, fmt.Errorf("%w: %s", errExchange, exchangeReason(err))
	}
	client := cfg.Client(ctx, tok)
	var user struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
	}
	if err := githubGet(ctx, client, u.GitHubAPIURL+"/user", &user); err != nil || user.ID <= 0 {
		return identity{}, errGitHubUser
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	email := ""
	if err := githubGet(ctx, client, u.GitHubAPIURL+"/user/emails", &emails); err == nil {
		for _, e := range emails {
			if e.Primary {
				email = verifiedEmail(e.Email, e.Verified)
			}
		}
	}
	return identity{issuer: store.IssuerGitHub, subject: strconv.FormatInt(user.ID, 10), email: email}, nil
}

func githubGet(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("github: %s answered %d", req.URL.Path, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// ownCallback handles the browser coming back from a developer's own login page with a
// signed assertion.
func (u *Upstream) ownCallback(c *gin.Context) {
	q := c.Request.URL.Query()
	state := q.Get("state")
	l, ok := u.consume(c, state)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	src, err := u.resolve(ctx, l.Provider, l.AppID)
	if err != nil || src.kind != store.SourceOwn {
		web.BadRequest(c, msgStateInvalid, hintStateInvalid)
		return
	}
	now := u.Now()
	a, err := upstream.VerifyAssertion(q.Get("assertion"), src.ownSecret, src.ownPublicKey, src.issuer, u.derive("nonce", state), now)
	if err != nil {
		web.Log(c).Warn("own-login assertion refused", "app_id", src.appID, "reason", err.Error())
		web.Error(c, http.StatusBadRequest, msgIDToken, hintRetry)
		return
	}
	switch err := u.Store.UseOwnAssertion(ctx, src.appID, a.JTI, a.Expiry); {
	case errors.Is(err, store.ErrReplayed):
		web.Log(c).Warn("own-login assertion replayed", "app_id", src.appID)
		web.Error(c, http.StatusBadRequest, msgIDToken, hintRetry)
		return
	case err != nil:
		web.Fail(c, err)
		return
	}
	email := ""
	if a.EmailVerified {
		email = verifiedEmail(a.Email, true)
	}
	u.finish(c, identity{issuer: src.issuer, subject: a.Subject, email: email}, l)
}

// finish signs the browser in as the identity's local user and continues where the
// flow started (the authorization request, hence the consent page, exactly as today).
func (u *Upstream) finish(c *gin.Context, id identity, l store.UpstreamLogin) {
	ctx := c.Request.Context()
	now := u.Now()
	var user store.User
	err := u.Store.InTx(ctx, func(tx *store.Tx) error {
		usr, created, err := tx.SignInIdentity(ctx, id.issuer, id.subject, id.email, now)
		if err != nil {
			return err
		}
		user = usr
		if usr.IsSuspended() {
			return errSuspended
		}
		action := "user.signed_in"
		if created {
			action = "user.signed_up"
		}
		details, _ := json.Marshal(map[string]string{"issuer": id.issuer, "provider": l.Provider})
		return tx.Audit(ctx, store.AuditEntry{At: now, ActorID: usr.ID, ActorEmail: usr.Email, Action: action,
			TargetType: "user", TargetID: usr.ID, IP: c.ClientIP(), Details: details})
	})
	if errors.Is(err, errSuspended) {
		web.Forbidden(c, "This account is suspended.", "Contact the operator of this service if you think this is a mistake.")
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	if err := u.Sessions.SignIn(c, user); err != nil {
		web.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	web.Redirect(c, web.SafeReturnTo(l.ReturnTo, "/dashboard"))
}

func (u *Upstream) oauth2Config(src source, ep oauth2.Endpoint) *oauth2.Config {
	return &oauth2.Config{ClientID: src.clientID, ClientSecret: src.clientSecret, Endpoint: ep,
		RedirectURL: u.BaseURL + upstream.CallbackPath, Scopes: src.scopes}
}

// derive returns a value derived from the state with the state key: the PKCE verifier
// (43 base64url characters, RFC 7636 §4.1) and the nonce need no storage.
func (u *Upstream) derive(purpose, state string) string {
	return base64.RawURLEncoding.EncodeToString(u.stateHasher.Hash(purpose + ":" + state))
}

// binding returns this browser's random binding value, setting the cookie when absent.
func (u *Upstream) binding(c *gin.Context) string {
	if v, err := c.Cookie(bindingCookie); err == nil && len(v) >= 43 && len(v) <= 64 {
		return v
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(c.Writer, &http.Cookie{Name: bindingCookie, Value: v, Path: "/login", HttpOnly: true,
		Secure: u.Secure, SameSite: http.SameSiteLaxMode})
	return v
}

func addQuery(raw, key, value string) string {
	pu, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := pu.Query()
	q.Set(key, value)
	pu.RawQuery = q.Encode()
	return pu.String()
}

// exchangeReason is the provider's error code from a failed exchange, for the log.
func exchangeReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return oauth.Truncate(re.ErrorCode, 64)
		}
		return "status " + strconv.Itoa(re.Response.StatusCode)
	}
	return "transport error"
}

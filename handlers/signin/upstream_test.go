package signin_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/store"
)

const gptCallback = "https://chatgpt.com/aip/g-identity/oauth/callback"

// fedWorld is two real AuthGPTs servers: up (HTTPS, on its own database) is the OpenID
// Connect provider of an app on down, configured through down's portal.
type fedWorld struct {
	up, down *handlertest.Env
	upApp    handlertest.AppFixture // down's client at up, redirect URI <down>/login/upstream/callback
	downApp  handlertest.AppFixture // the GPT's client at down
	dev      *http.Client           // down's developer, signed in
	pool     *x509.CertPool
	gpt      *oauth2.Config
}

func newFedWorld(t *testing.T, opts ...handlertest.Option) *fedWorld {
	t.Helper()
	return newFedWorldWith(t, false, opts...)
}

// newFedWorldWith is newFedWorld; withGateway also runs down's /gw gateway.
func newFedWorldWith(t *testing.T, withGateway bool, opts ...handlertest.Option) *fedWorld {
	t.Helper()
	up := handlertest.NewTLS(t)
	pool := x509.NewCertPool()
	pool.AddCert(up.Server.Certificate())
	fetcher := safefetch.New(safefetch.Options{AllowAddrs: []string{up.Server.Listener.Addr().String()}, RootCAs: pool})
	opts = append([]handlertest.Option{func(d *handlers.Config) { d.Fetcher = fetcher }}, opts...)
	var down *handlertest.Env
	if withGateway {
		down = handlertest.NewWithGateway(t, nil, opts...)
	} else {
		down = handlertest.New(t, opts...)
	}
	w := &fedWorld{up: up, down: down, pool: pool}
	w.upApp = up.NewApp(t, handlertest.UniqueEmail(t, "idp-dev"), store.ClientKindGPT, down.BaseURL+"/login/upstream/callback")
	devEmail := handlertest.UniqueEmail(t, "dev")
	w.downApp = down.NewApp(t, devEmail, store.ClientKindGPT, gptCallback)
	w.dev = down.SignIn(t, devEmail)
	w.gpt = &oauth2.Config{ClientID: w.downApp.Client.ID, ClientSecret: w.downApp.Secret, RedirectURL: gptCallback,
		Endpoint: oauth2.Endpoint{AuthURL: down.BaseURL + oauth.PathAuthorize, TokenURL: down.BaseURL + oauth.PathToken},
		Scopes:   []string{"openid", "email"}}
	return w
}

// useOIDC switches down's app to up through the portal form, as a developer would.
func (w *fedWorld) useOIDC(t *testing.T) {
	t.Helper()
	resp, body := w.saveSource(t, url.Values{"identity_source": {"oidc"}, "oidc_issuer": {w.up.BaseURL},
		"upstream_client_id": {w.upApp.Client.ID}, "upstream_client_secret": {w.upApp.Secret}, "upstream_scopes": {"openid email"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("save identity source = %d, want 200: %.600s", resp.StatusCode, body)
	}
}

func (w *fedWorld) saveSource(t *testing.T, form url.Values) (*http.Response, string) {
	t.Helper()
	return w.down.PostForm(t, w.dev, "/dashboard/apps/"+w.downApp.App.Slug+"/identity-source", form)
}

// browser is a cookie-keeping browser that trusts up's certificate and follows nothing.
func (w *fedWorld) browser(t *testing.T) *http.Client {
	t.Helper()
	return &http.Client{Jar: &originJar{jars: map[string]http.CookieJar{}}, Timeout: 30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// upUser signs the browser in at the upstream by email code and returns that user.
func (w *fedWorld) upUser(t *testing.T, b *http.Client) store.User {
	t.Helper()
	email := handlertest.UniqueEmail(t, "person")
	code := w.up.RequestCode(t, b, email)
	if resp, body := w.up.PostForm(t, b, "/login/verify", url.Values{"email": {email}, "code": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("upstream sign-in = %d: %.300s", resp.StatusCode, body)
	}
	u, err := w.up.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// originJar keeps cookies per host and port. Both servers listen on 127.0.0.1, where a
// browser's jar (like net/http/cookiejar) would let one server's session cookie replace
// the other's; in production they are different hosts.
type originJar struct {
	mu   sync.Mutex
	jars map[string]http.CookieJar
}

func (j *originJar) jar(u *url.URL) http.CookieJar {
	j.mu.Lock()
	defer j.mu.Unlock()
	jar, ok := j.jars[u.Host]
	if !ok {
		jar, _ = cookiejar.New(nil)
		j.jars[u.Host] = jar
	}
	return jar
}

func (j *originJar) SetCookies(u *url.URL, cookies []*http.Cookie) { j.jar(u).SetCookies(u, cookies) }
func (j *originJar) Cookies(u *url.URL) []*http.Cookie             { return j.jar(u).Cookies(u) }

func get(t *testing.T, b *http.Client, rawURL string) (*http.Response, string) {
	t.Helper()
	resp, err := b.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, sb.String()
}

// location resolves a redirect's Location against the request URL.
func location(t *testing.T, resp *http.Response) string {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("%s answered %d, want a redirect", resp.Request.URL, resp.StatusCode)
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.String()
}

// toUpstream runs the GPT's authorization request on down until the browser is sent to
// up's authorization endpoint, and returns that URL.
func (w *fedWorld) toUpstream(t *testing.T, b *http.Client, state string) string {
	t.Helper()
	resp, _ := get(t, b, w.gpt.AuthCodeURL(state, oidc.Nonce("gpt-nonce")))
	start := location(t, resp)
	if !strings.HasPrefix(start, w.down.BaseURL+"/login/upstream?") {
		t.Fatalf("/oauth/authorize sent a signed-out user to %s, want /login/upstream", start)
	}
	resp, _ = get(t, b, start)
	upAuth := location(t, resp)
	if !strings.HasPrefix(upAuth, w.up.BaseURL+oauth.PathAuthorize+"?") {
		t.Fatalf("/login/upstream sent the browser to %s, want the upstream's authorization endpoint", upAuth)
	}
	q := mustURL(t, upAuth).Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || len(q.Get("state")) < 22 {
		t.Fatalf("upstream request lacks PKCE S256, nonce or a 128-bit state: %v", q)
	}
	return upAuth
}

// atUpstream consents at up and returns the callback URL up sends the browser to.
func (w *fedWorld) atUpstream(t *testing.T, b *http.Client, upAuth string) string {
	t.Helper()
	resp, body := get(t, b, upAuth)
	if resp.StatusCode == http.StatusOK {
		resp, _ = w.up.Allow(t, b, body)
	}
	cb := location(t, resp)
	if !strings.HasPrefix(cb, w.down.BaseURL+"/login/upstream/callback?") {
		t.Fatalf("upstream redirected to %s, want down's callback", cb)
	}
	return cb
}

// fromCallback follows down's callback to its consent page, allows, and exchanges the
// code with x/oauth2 as the GPT does.
func (w *fedWorld) fromCallback(t *testing.T, b *http.Client, cb, state string) *oauth2.Token {
	t.Helper()
	resp, body := get(t, b, cb)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback = %d, want 303 back to the authorization request: %.400s", resp.StatusCode, body)
	}
	resp, body = get(t, b, location(t, resp))
	if resp.StatusCode == http.StatusOK {
		if !strings.Contains(body, `name="decision" value="allow"`) {
			t.Fatalf("after the upstream sign-in: want down's consent page, got %.400s", body)
		}
		resp, _ = w.down.Allow(t, b, body)
	}
	back := mustURL(t, location(t, resp))
	if back.Query().Get("state") != state || back.Query().Get("code") == "" {
		t.Fatalf("GPT callback %s lacks the code or state", back)
	}
	tok, err := w.gpt.Exchange(context.Background(), back.Query().Get("code"))
	if err != nil {
		t.Fatalf("GPT token exchange: %v", err)
	}
	return tok
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// withQuery returns raw with key set to value (value "\x00" deletes it).
func withQuery(t *testing.T, raw, key, value string) string {
	t.Helper()
	u := mustURL(t, raw)
	q := u.Query()
	if value == "\x00" {
		q.Del(key)
	} else {
		q.Set(key, value)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func TestUpstreamOIDC_JourneyToConsentAndTokensCarrySubAndIdP(t *testing.T) {
	w := newFedWorld(t)
	w.useOIDC(t)
	b := w.browser(t)
	person := w.upUser(t, b)
	tok := w.fromCallback(t, b, w.atUpstream(t, b, w.toUpstream(t, b, "gpt-state-1")), "gpt-state-1")

	// The GPT checks the ID token with go-oidc against down's discovery and JWKS.
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, w.down.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: w.gpt.ClientID, Now: w.down.Clock.Now}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var idc struct {
		IdP   string `json:"idp"`
		Email string `json:"email"`
		Nonce string `json:"nonce"`
	}
	_ = idt.Claims(&idc)
	if idt.Subject != person.ID || idc.IdP != w.up.BaseURL || idc.Email != person.Email || idc.Nonce != "gpt-nonce" {
		t.Errorf("ID token sub %q idp %q email %q nonce %q; want sub %q (the upstream subject), idp %q, email %q",
			idt.Subject, idc.IdP, idc.Email, idc.Nonce, person.ID, w.up.BaseURL, person.Email)
	}
	// The access token, userinfo and introspection say the same.
	claims, err := w.down.Instance.Keys.KeySet().VerifyAccessToken(tok.AccessToken, w.down.Clock.Now(), w.down.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if claims.PublicSubject() != person.ID || claims.IdP != w.up.BaseURL {
		t.Errorf("access token sub %q idp %q", claims.PublicSubject(), claims.IdP)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != person.ID || info.Email != person.Email {
		t.Errorf("userinfo = %+v, %v; want sub %q", info, err, person.ID)
	}
	var ui struct {
		IdP string `json:"idp"`
	}
	_ = info.Claims(&ui)
	if ui.IdP != w.up.BaseURL {
		t.Errorf("userinfo idp = %q", ui.IdP)
	}
	resp, err := http.PostForm(w.down.BaseURL+oauth.PathIntrospect, url.Values{"token": {tok.AccessToken},
		"client_id": {w.gpt.ClientID}, "client_secret": {w.gpt.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Active bool   `json:"active"`
		Sub    string `json:"sub"`
		IdP    string `json:"idp"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&in)
	resp.Body.Close()
	if !in.Active || in.Sub != person.ID || in.IdP != w.up.BaseURL {
		t.Errorf("introspection = %+v; want active, sub %q, idp %q", in, person.ID, w.up.BaseURL)
	}
	// Down's local user is the identity (up, person.ID), with the verified email.
	local, err := w.down.Store.UserByID(ctx, claims.Subject)
	if err != nil || local.Issuer != w.up.BaseURL || local.Subject != person.ID || local.Email != person.Email {
		t.Errorf("local user = %+v, %v", local, err)
	}
	if _, err := w.down.Store.UserByEmail(ctx, person.Email); err != store.ErrNotFound {
		t.Errorf("an email-code account was created for the upstream identity (err %v)", err)
	}

	// Never a secret, code or token in either server's logs or on the app page.
	_, page := w.down.Get(t, w.dev, "/dashboard/apps/"+w.downApp.App.Slug)
	if !strings.Contains(page, "/login/upstream/callback") || !strings.Contains(page, `data-testid="identity-source"`) {
		t.Errorf("app page lacks the sign-in section with its callback URL")
	}
	for name, text := range map[string]string{"down logs": w.down.Logs.String(), "up logs": w.up.Logs.String(), "app page": page} {
		for _, secret := range []string{w.upApp.Secret, tok.AccessToken, tok.RefreshToken, raw} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contain a secret or token (%.12s…)", name, secret)
			}
		}
	}
	// prompt=login at the app asks the provider to sign the person in again.
	resp, _ = get(t, b, w.gpt.AuthCodeURL("again", oauth2.SetAuthURLParam("prompt", "login")))
	resp, _ = get(t, b, location(t, resp))
	if loc := mustURL(t, location(t, resp)); loc.Query().Get("prompt") != "login" || !strings.HasPrefix(loc.String(), w.up.BaseURL) {
		t.Errorf("prompt=login was sent on to %s", loc)
	}

	var sealed []byte
	if err := w.down.Store.DB().Get(&sealed, `SELECT client_secret_sealed FROM app_identity_sources WHERE app_id = $1`, w.downApp.App.ID); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), w.upApp.Secret) || len(sealed) < len(w.upApp.Secret) {
		t.Errorf("the upstream client secret is not sealed at rest")
	}
}

// refusal runs the flow up to the callback URL, lets mutate change it (or the browser),
// and expects the callback to be refused with the state page and no sign-in.
func TestUpstreamOIDC_CallbackRefusals(t *testing.T) {
	w := newFedWorld(t)
	w.useOIDC(t)
	tests := []struct {
		name   string
		mutate func(t *testing.T, b *http.Client, cb string) (*http.Client, string)
		reason string // in down's log
	}{
		{"wrong state", func(t *testing.T, b *http.Client, cb string) (*http.Client, string) {
			return b, withQuery(t, cb, "state", oauth.NewToken(""))
		}, "unknown or reused state"},
		{"missing state", func(t *testing.T, b *http.Client, cb string) (*http.Client, string) {
			return b, withQuery(t, cb, "state", "\x00")
		}, ""},
		{"state from another browser", func(t *testing.T, b *http.Client, cb string) (*http.Client, string) {
			other := w.browser(t)
			get(t, other, w.gpt.AuthCodeURL("other")) // has its own binding cookie
			return other, cb
		}, "state from another browser"},
		{"iss mismatch (RFC 9207)", func(t *testing.T, b *http.Client, cb string) (*http.Client, string) {
			return b, withQuery(t, cb, "iss", "https://evil.example")
		}, "RFC 9207 iss parameter differs"},
		{"iss missing although advertised", func(t *testing.T, b *http.Client, cb string) (*http.Client, string) {
			return b, withQuery(t, cb, "iss", "\x00")
		}, "RFC 9207 iss parameter missing"},
		{"provider error access_denied", func(t *testing.T, b *http.Client, cb string) (*http.Client, string) {
			u := withQuery(t, cb, "code", "\x00")
			return b, withQuery(t, u, "error", "access_denied")
		}, "provider answered an error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := w.browser(t)
			w.upUser(t, b)
			cb := w.atUpstream(t, b, w.toUpstream(t, b, "s-"+tt.name))
			users, logAt := countFederated(t, w.down), len(w.down.Logs.String())
			client, bad := tt.mutate(t, b, cb)
			resp, body := get(t, client, bad)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("callback = %d, want 400: %.300s", resp.StatusCode, body)
			}
			if strings.Contains(body, w.upApp.Secret) || strings.Contains(body, mustURL(t, cb).Query().Get("code")) {
				t.Error("the error page echoes a secret or the code")
			}
			if n := countFederated(t, w.down); n != users {
				t.Errorf("federated users %d → %d: a refused callback signed someone in", users, n)
			}
			if tt.reason != "" && !strings.Contains(w.down.Logs.String()[logAt:], tt.reason) {
				t.Errorf("down's log does not say %q", tt.reason)
			}
		})
	}
}

func countFederated(t *testing.T, env *handlertest.Env) int {
	t.Helper()
	var n int
	if err := env.Store.DB().Get(&n, `SELECT count(*) FROM users WHERE issuer <> ''`); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUpstreamOIDC_StateIsSingleUseAndExpires(t *testing.T) {
	w := newFedWorld(t)
	w.useOIDC(t)

	b := w.browser(t)
	w.upUser(t, b)
	cb := w.atUpstream(t, b, w.toUpstream(t, b, "once"))
	if resp, body := get(t, b, cb); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first callback = %d: %.300s", resp.StatusCode, body)
	}
	logAt := len(w.down.Logs.String())
	if resp, _ := get(t, b, cb); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback = %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(w.down.Logs.String()[logAt:], "unknown or reused state") {
		t.Error("the replayed state was not refused as reused (before any code exchange)")
	}

	b2 := w.browser(t)
	w.upUser(t, b2)
	cb2 := w.atUpstream(t, b2, w.toUpstream(t, b2, "late"))
	w.down.Clock.Advance(10*time.Minute + time.Second)
	if resp, _ := get(t, b2, cb2); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback after 10 minutes = %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(w.down.Logs.String(), "state expired") {
		t.Error("the expired state was not refused as expired")
	}
}

// An attacker who swaps the nonce of the outbound request (so the upstream mints an ID
// token for another sign-in) is refused: PKCE still matches, the nonce does not.
func TestUpstreamOIDC_NonceMismatchRefused(t *testing.T) {
	w := newFedWorld(t)
	w.useOIDC(t)
	b := w.browser(t)
	w.upUser(t, b)
	upAuth := withQuery(t, w.toUpstream(t, b, "nonce"), "nonce", "attacker-nonce")
	cb := w.atUpstream(t, b, upAuth)
	resp, body := get(t, b, cb)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback with a foreign nonce = %d, want 400: %.300s", resp.StatusCode, body)
	}
	if !strings.Contains(w.down.Logs.String(), "nonce") || countFederated(t, w.down) != 0 {
		t.Error("a wrong nonce signed someone in, or was not logged as such")
	}
}

func TestIdentitySource_DiscoveryFailureIsFieldError(t *testing.T) {
	w := newFedWorld(t)
	tests := []struct {
		name, issuer, want string
	}{
		{"no discovery document", w.up.BaseURL + "/tenant", "404"},
		{"issuer differs from the URL", w.up.BaseURL + "/", "names the issuer"},
		{"private address", "https://10.0.0.1", "private or loopback"},
		{"http", "http://" + w.up.Server.Listener.Addr().String(), "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := w.saveSource(t, url.Values{"identity_source": {"oidc"}, "oidc_issuer": {tt.issuer},
				"upstream_client_id": {w.upApp.Client.ID}, "upstream_client_secret": {w.upApp.Secret}})
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("save = %d, want 422", resp.StatusCode)
			}
			if !strings.Contains(body, `id="oidc-issuer-error"`) || !strings.Contains(body, tt.want) {
				t.Errorf("no field error next to oidc_issuer saying %q: %.1500s", tt.want, body)
			}
			if strings.Contains(body, w.upApp.Secret) {
				t.Error("the 422 page echoes the client secret")
			}
			src, err := w.down.Store.IdentitySourceByApp(context.Background(), w.downApp.App.ID)
			if err != nil || src.Kind != store.SourceEmail {
				t.Errorf("after a refused save the source is %+v (%v), want unchanged", src, err)
			}
		})
	}
}

// Switching the source never moves a grant: the email-code user's grant and refresh
// token keep working for that user; the upstream identity gets its own grant.
func TestIdentitySource_SwitchKeepsGrantsBound(t *testing.T) {
	w := newFedWorld(t)
	ctx := context.Background()
	emailUser := handlertest.UniqueEmail(t, "early")
	before := w.down.UserToken(t, w.downApp, emailUser, "openid email")
	old, _ := w.down.Store.UserByEmail(ctx, emailUser)

	w.useOIDC(t)
	_, page := w.down.Get(t, w.dev, "/dashboard/apps/"+w.downApp.App.Slug)
	if !strings.Contains(page, "keep their grants, bound to the identity they signed in with") {
		t.Error("the section does not say what happens to existing grants")
	}
	// Someone signed in with an email code (here the developer) is not that app's user
	// any more: the authorization request sends them to the upstream, not to consent.
	// (The switch reaches the authorization endpoint's cache by NOTIFY: wait for it.)
	waitFor(t, func() bool {
		resp, _ := get(t, w.dev, w.gpt.AuthCodeURL("signed-in-other"))
		return resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(location(t, resp), w.down.BaseURL+"/login/upstream?")
	})
	b := w.browser(t)
	person := w.upUser(t, b)
	w.fromCallback(t, b, w.atUpstream(t, b, w.toUpstream(t, b, "after-switch")), "after-switch")
	// And the other way round: the upstream identity's session is no email-code account.
	other := w.down.NewApp(t, handlertest.UniqueEmail(t, "dev2"), store.ClientKindGPT, gptCallback)
	q := url.Values{"response_type": {"code"}, "client_id": {other.Client.ID}, "redirect_uri": {gptCallback}, "state": {"x"}}
	resp, _ := get(t, b, w.down.BaseURL+oauth.PathAuthorize+"?"+q.Encode())
	if loc := location(t, resp); !strings.HasPrefix(loc, w.down.BaseURL+"/login?reauth=1&") {
		t.Errorf("an upstream identity's session on an email-code app was sent to %s, want the email sign-in", loc)
	}

	if g, err := w.down.Store.ActiveGrant(ctx, old.ID, w.downApp.Client.ID, w.downApp.App.ID); err != nil || g.UserID != old.ID {
		t.Fatalf("the email user's grant = %+v, %v; want it kept", g, err)
	}
	refreshed := w.down.Refresh(t, w.downApp, before.Refresh)
	if refreshed.Claims.PublicSubject() != old.ID || refreshed.Claims.IdP != "" {
		t.Errorf("refreshed token of the old grant: sub %q idp %q; want the email user %q", refreshed.Claims.PublicSubject(), refreshed.Claims.IdP, old.ID)
	}
	var fedGrants int
	_ = w.down.Store.DB().Get(&fedGrants, `SELECT count(*) FROM grants g JOIN users u ON u.id = g.user_id
		WHERE u.issuer = $1 AND u.subject = $2 AND g.revoked_at IS NULL`, w.up.BaseURL, person.ID)
	if fedGrants != 1 {
		t.Errorf("the upstream identity has %d grants, want its own one", fedGrants)
	}
}

// waitFor polls cond until it holds (a NOTIFY reaching the caches takes a moment); it
// fails after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

package handlertest

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/oauth"
)

// Tokens is a successful answer of the real token endpoint, with the access token's
// claims as the server's own keys verify them.
type Tokens struct {
	Access  string
	Refresh string
	IDToken string
	Scope   string
	Claims  oauth.AccessClaims // Subject is the user ID (client ID for client_credentials); GrantID the grant
}

// UserToken signs userEmail in by emailed code (creating the user), then runs the
// authorization-code flow of app's first client as ChatGPT runs it: GET /oauth/authorize
// with state and without PKCE (with PKCE S256 for a public client), Allow on the consent
// page with every scope it offers, POST /oauth/token with the client secret in the body.
// scope "" asks for the app's default scopes.
func (e *Env) UserToken(t testing.TB, app AppFixture, userEmail, scope string) Tokens {
	t.Helper()
	return e.UserTokenFor(t, e.SignIn(t, userEmail), app, scope)
}

// UserTokenFor runs UserToken's flow for the user signed in on c (a remembered consent
// skips the page).
func (e *Env) UserTokenFor(t testing.TB, c *http.Client, app AppFixture, scope string) Tokens {
	t.Helper()
	if len(app.Client.RedirectURIs) == 0 {
		t.Fatal("UserToken: the client has no redirect URI")
	}
	redirect := app.Client.RedirectURIs[0]
	q := url.Values{"response_type": {"code"}, "client_id": {app.Client.ID}, "redirect_uri": {redirect},
		"state": {oauth.NewToken("")[:16]}, "scope": {scope}}
	var verifier string
	if app.Secret == "" {
		verifier = oauth.NewToken("") + "-verifier"
		q.Set("code_challenge", oauth.S256Challenge(verifier))
		q.Set("code_challenge_method", oauth.MethodS256)
	}
	resp, body := e.Get(t, c, oauth.PathAuthorize+"?"+q.Encode())
	if resp.StatusCode == http.StatusOK {
		m := consentTicket.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("UserToken: /oauth/authorize answered 200 without a consent form: %.400s", body)
		}
		form := url.Values{"ticket": {html.UnescapeString(m[1])}, "decision": {"allow"}}
		for _, s := range consentScope.FindAllStringSubmatch(body, -1) {
			form.Add("scope", html.UnescapeString(s[1]))
		}
		resp, body = e.PostForm(t, c, "/oauth/consent", form)
	}
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("UserToken: authorization answered %d, want 303 to the client: %.400s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != q.Get("state") {
		t.Fatalf("UserToken: callback %q holds no code for our state", resp.Header.Get("Location"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {redirect},
		"client_id": {app.Client.ID}}
	if app.Secret != "" {
		form.Set("client_secret", app.Secret)
	}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	return e.Token(t, form)
}

// ServiceToken gets a client_credentials token for app's (service) client, with the
// secret in Basic auth. scope "" asks for the app's default scopes.
func (e *Env) ServiceToken(t testing.TB, app AppFixture, scope string) Tokens {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return e.token(t, form, app.Client.ID, app.Secret)
}

// Refresh redeems a refresh token of app's client (secret in the body) for new tokens.
func (e *Env) Refresh(t testing.TB, app AppFixture, refreshToken string) Tokens {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {app.Client.ID}}
	if app.Secret != "" {
		form.Set("client_secret", app.Secret)
	}
	return e.Token(t, form)
}

// Token posts form to /oauth/token and fails the test unless it answers 200.
func (e *Env) Token(t testing.TB, form url.Values) Tokens {
	t.Helper()
	return e.token(t, form, "", "")
}

func (e *Env) token(t testing.TB, form url.Values, basicID, basicSecret string) Tokens {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.BaseURL+oauth.PathToken, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		// RFC 6749 §2.3.1: form-encode each part before Basic encoding.
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := (&http.Client{Transport: e.Transport}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", oauth.PathToken, err)
	}
	body := readBody(t, resp)
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
		Scope        string `json:"scope"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &tr) != nil || tr.AccessToken == "" {
		t.Fatalf("POST %s (%s) = %d, want 200 with an access token: %.400s", oauth.PathToken, form.Get("grant_type"), resp.StatusCode, body)
	}
	claims, err := e.Instance.Keys.VerifyAccessToken(context.Background(), tr.AccessToken, e.Clock.Now(), e.BaseURL)
	if err != nil {
		t.Fatalf("the token endpoint's access token does not verify with the server's keys: %v", err)
	}
	return Tokens{Access: tr.AccessToken, Refresh: tr.RefreshToken, IDToken: tr.IDToken, Scope: tr.Scope, Claims: claims}
}

var (
	consentTicket = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
	consentScope  = regexp.MustCompile(`name="scope" value="([^"]+)"`)
)

// Allow answers the consent page in body with Allow and every offered scope, on this
// server, and returns the 303 to the client.
func (e *Env) Allow(t testing.TB, c *http.Client, body string) (*http.Response, string) {
	t.Helper()
	m := consentTicket.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("Allow: no consent form in the page: %.400s", body)
	}
	form := url.Values{"ticket": {html.UnescapeString(m[1])}, "decision": {"allow"}}
	for _, s := range consentScope.FindAllStringSubmatch(body, -1) {
		form.Add("scope", html.UnescapeString(s[1]))
	}
	return e.PostForm(t, c, "/oauth/consent", form)
}

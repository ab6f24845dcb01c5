package authserver_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// The callback ChatGPT registers for a GPT action (AI-CLIENTS.md A5).
const gptCallback = "https://chatgpt.com/aip/g-0123456789abcdef/oauth/callback"

// world is one running server with an app whose first client is the kind under test.
type world struct {
	env *handlertest.Env
	app handlertest.AppFixture
}

func newWorld(t *testing.T, kind string, redirectURIs ...string) *world {
	t.Helper()
	env := handlertest.New(t)
	if len(redirectURIs) == 0 && kind != store.ClientKindService {
		redirectURIs = []string{gptCallback}
	}
	return &world{env: env, app: env.NewApp(t, handlertest.UniqueEmail(t, "dev"), kind, redirectURIs...)}
}

// authorizeQuery is a ChatGPT-style authorization request (no PKCE, state, scope as given).
func (w *world) authorizeQuery(extra ...string) url.Values {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {w.app.Client.ID},
		"redirect_uri":  {w.app.Client.RedirectURIs[0]},
		"state":         {"st-" + randomString(8)},
		"scope":         {"openid email"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "\x00" {
			q.Del(extra[i])
			continue
		}
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// get sends GET path with the client and returns the response and body.
func (w *world) get(t *testing.T, c *http.Client, path string) (*http.Response, string) {
	t.Helper()
	return w.env.Get(t, c, path)
}

// authorize runs GET /oauth/authorize with q.
func (w *world) authorize(t *testing.T, c *http.Client, q url.Values) (*http.Response, string) {
	t.Helper()
	return w.get(t, c, oauth.PathAuthorize+"?"+q.Encode())
}

var ticketRE = regexp.MustCompile(`name="ticket" value="([^"]+)"`)

// ticketOf extracts the consent ticket from a consent page.
func ticketOf(t *testing.T, body string) string {
	t.Helper()
	m := ticketRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no consent ticket in page: %.400s", body)
	}
	return html.UnescapeString(m[1])
}

// consent posts the consent form of page with decision and the switched-on scopes
// (nil: all the page offers).
func (w *world) consent(t *testing.T, c *http.Client, page, decision string, scopes []string) *http.Response {
	t.Helper()
	form := url.Values{"ticket": {ticketOf(t, page)}, "decision": {decision}}
	if scopes == nil {
		for _, m := range regexp.MustCompile(`name="scope" value="([^"]+)"`).FindAllStringSubmatch(page, -1) {
			form.Add("scope", html.UnescapeString(m[1]))
		}
	} else {
		form["scope"] = scopes
	}
	resp, _ := w.env.PostForm(t, c, "/oauth/consent", form)
	return resp
}

// callback parses a 303 to the client's redirect URI.
func callback(t *testing.T, resp *http.Response, wantPrefix string) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status = %d, want 303 to the client", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, wantPrefix+"?") {
		t.Fatalf("Location = %q, want %s?…", loc, wantPrefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// codeFor signs in (when c is nil), authorizes q and allows consent when asked; it
// returns the code and the signed-in client.
func (w *world) codeFor(t *testing.T, c *http.Client, q url.Values) (string, *http.Client) {
	t.Helper()
	if c == nil {
		c = w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	}
	resp, body := w.authorize(t, c, q)
	if resp.StatusCode == http.StatusOK {
		resp = w.consent(t, c, body, "allow", nil)
	}
	cb := callback(t, resp, q.Get("redirect_uri"))
	if cb.Get("error") != "" {
		t.Fatalf("authorization error %q: %s", cb.Get("error"), cb.Get("error_description"))
	}
	if cb.Get("state") != q.Get("state") || cb.Get("iss") != w.env.BaseURL {
		t.Fatalf("callback state/iss = %q/%q, want %q/%q", cb.Get("state"), cb.Get("iss"), q.Get("state"), w.env.BaseURL)
	}
	return cb.Get("code"), c
}

// tokenResult is a token endpoint answer.
type tokenResult struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r tokenResult) str(k string) string { s, _ := r.Body[k].(string); return s }

// post posts a form to a machine endpoint, optionally with Basic credentials.
func (w *world) post(t *testing.T, path string, form url.Values, basicID, basicSecret string) tokenResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.env.BaseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) tokenResult {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := tokenResult{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &r.Body)
	}
	return r
}

// exchange redeems a code with the client secret in the body (ChatGPT's default).
func (w *world) exchange(t *testing.T, code string, extra ...string) tokenResult {
	t.Helper()
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {w.app.Client.RedirectURIs[0]},
		"client_id":    {w.app.Client.ID},
	}
	if w.app.Secret != "" {
		form.Set("client_secret", w.app.Secret)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "\x00" {
			form.Del(extra[i])
			continue
		}
		form.Set(extra[i], extra[i+1])
	}
	return w.post(t, oauth.PathToken, form, "", "")
}

// refresh exchanges a refresh token with the secret in the body.
func (w *world) refresh(t *testing.T, token string, extra ...string) tokenResult {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}, "client_id": {w.app.Client.ID}}
	if w.app.Secret != "" {
		form.Set("client_secret", w.app.Secret)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return w.post(t, oauth.PathToken, form, "", "")
}

// wantOK fails unless r is a 200 token response.
func wantOK(t *testing.T, r tokenResult) {
	t.Helper()
	if r.Status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("token response = %d %s, want 200 with an access token", r.Status, r.Raw)
	}
}

// wantError fails unless r is an RFC 6749 §5.2 error with the code and status.
func wantError(t *testing.T, r tokenResult, status int, code string) {
	t.Helper()
	if r.Status != status || r.str("error") != code {
		t.Fatalf("response = %d %s, want %d with error %q", r.Status, r.Raw, status, code)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("error Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
	}
}

// grantState reads a grant's revocation and its refresh tokens from the database.
func (w *world) grantRevoked(t *testing.T, grantID string) bool {
	t.Helper()
	g, err := w.env.Store.GrantByID(context.Background(), grantID)
	if err != nil {
		t.Fatalf("GrantByID(%s): %v", grantID, err)
	}
	return g.IsRevoked()
}

// liveRefreshTokens counts a grant's refresh tokens that are neither rotated nor revoked.
func (w *world) liveRefreshTokens(t *testing.T, grantID string) int {
	t.Helper()
	var n int
	err := w.env.Store.DB().Get(&n, `SELECT count(*) FROM refresh_tokens WHERE grant_id = $1 AND rotated_at IS NULL AND revoked_at IS NULL`, grantID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// claimsOf decodes a JWT's payload without verifying it (tests verify elsewhere).
func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %.40s…", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func randomString(n int) string {
	return oauth.NewToken("")[:n]
}

// pkcePair returns a verifier and its S256 challenge.
func pkcePair() (verifier, challenge string) {
	v := oauth.NewToken("") + "-verifier"
	return v, oauth.S256Challenge(v)
}

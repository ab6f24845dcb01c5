package authserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

const claudeCallback = "https://claude.ai/api/mcp/auth_callback"

// mcpWorld is a server with an app open to MCP clients and a client registered by
// dynamic registration (Claude's body).
type mcpWorld struct {
	env *handlertest.Env
	app handlertest.AppFixture
	reg registration
}

func newMCPWorld(t *testing.T) *mcpWorld {
	t.Helper()
	env := handlertest.New(t)
	return &mcpWorld{env: env, app: env.NewMCPApp(t, handlertest.UniqueEmail(t, "dev"), ""), reg: mustRegister(t, env, claudeDCR)}
}

func (w *mcpWorld) resource(sub string) string { return w.env.BaseURL + "/gw/" + w.app.App.Slug + sub }

// query is an MCP client's authorization request: PKCE S256, state, resource.
func (w *mcpWorld) query(resource, challenge string, extra ...string) url.Values {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {w.reg.ClientID},
		"redirect_uri":          {claudeCallback},
		"state":                 {"st-" + randomString(8)},
		"scope":                 {"openid email"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	if resource != "" {
		q.Set("resource", resource)
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

func (w *mcpWorld) get(t *testing.T, c *http.Client, q url.Values) (*http.Response, string) {
	t.Helper()
	return w.env.Get(t, c, oauth.PathAuthorize+"?"+q.Encode())
}

// code runs the authorization (consent allowed when asked) and returns the code.
func (w *mcpWorld) code(t *testing.T, c *http.Client, q url.Values) string {
	t.Helper()
	resp, body := w.get(t, c, q)
	if resp.StatusCode == http.StatusOK {
		resp = (&world{env: w.env}).consent(t, c, body, "allow", nil)
	}
	cb := callback(t, resp, claudeCallback)
	if cb.Get("error") != "" {
		t.Fatalf("authorization error %q: %s", cb.Get("error"), cb.Get("error_description"))
	}
	return cb.Get("code")
}

func (w *mcpWorld) token(t *testing.T, form url.Values) tokenResult {
	t.Helper()
	form.Set("client_id", w.reg.ClientID)
	return (&world{env: w.env}).post(t, oauth.PathToken, form, "", "")
}

func (w *mcpWorld) exchange(t *testing.T, code, verifier, resource string) tokenResult {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {claudeCallback}, "code_verifier": {verifier}}
	if resource != "" {
		form.Set("resource", resource)
	}
	return w.token(t, form)
}

// wantRedirectError fails unless resp redirects to the callback with the error, state
// and iss (RFC 9207).
func wantRedirectError(t *testing.T, env *handlertest.Env, resp *http.Response, q url.Values, code string) {
	t.Helper()
	cb := callback(t, resp, q.Get("redirect_uri"))
	if cb.Get("error") != code || cb.Get("state") != q.Get("state") || cb.Get("iss") != env.BaseURL {
		t.Fatalf("callback error=%q state=%q iss=%q (%s), want %q with state and iss", cb.Get("error"), cb.Get("state"),
			cb.Get("iss"), cb.Get("error_description"), code)
	}
}

func TestMCP_RegisteredClientIsBoundToTheResourceApp(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	verifier, challenge := pkcePair()
	mcpURL := w.resource("/mcp")

	resp, page := w.get(t, user, w.query(mcpURL, challenge))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize = %d, want the consent page", resp.StatusCode)
	}
	for _, want := range []string{`data-origin="registration"`, `data-testid="resource"`, mcpURL, w.app.App.Name, "claude.ai"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	code := (&world{env: w.env}).consent(t, user, page, "allow", nil)
	cb := callback(t, code, claudeCallback)
	if cb.Get("iss") != w.env.BaseURL {
		t.Errorf("iss = %q", cb.Get("iss"))
	}
	tok := w.exchange(t, cb.Get("code"), verifier, mcpURL)
	wantOK(t, tok)
	claims := claimsOf(t, tok.str("access_token"))
	if aud, _ := claims["aud"].(string); aud != mcpURL {
		if list, _ := claims["aud"].([]any); len(list) != 1 || list[0] != mcpURL {
			t.Errorf("aud = %v, want %q", claims["aud"], mcpURL)
		}
	}
	if claims["client_id"] != w.reg.ClientID {
		t.Errorf("client_id claim = %v", claims["client_id"])
	}

	// Rows: the grant names the app; code and refresh token the resource.
	var g struct {
		AppID string `db:"app_id"`
		N     int    `db:"n"`
	}
	if err := w.env.Store.DB().Get(&g, `SELECT app_id::text AS app_id, count(*) OVER () AS n FROM grants WHERE client_id = $1`, w.reg.ClientID); err != nil {
		t.Fatal(err)
	}
	if g.AppID != w.app.App.ID || g.N != 1 {
		t.Errorf("grant app = %s (%d grants), want %s", g.AppID, g.N, w.app.App.ID)
	}
	if n := countRows(t, w.env, `SELECT count(*) FROM auth_codes WHERE client_id = $1 AND resource = $2`, w.reg.ClientID, mcpURL); n != 1 {
		t.Errorf("codes bound to the resource = %d, want 1", n)
	}
	if n := countRows(t, w.env, `SELECT count(*) FROM refresh_tokens WHERE client_id = $1 AND resource = $2`, w.reg.ClientID, mcpURL); n != 1 {
		t.Errorf("refresh tokens bound to the resource = %d, want 1", n)
	}
	if row, _ := readClient(t, w.env, w.reg.ClientID); row.AppID != nil {
		t.Errorf("the client got an app: %v", *row.AppID)
	}

	// Refresh: the same resource, a narrower one, never a wider one.
	rt := tok.str("refresh_token")
	r := w.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {w.resource("")}})
	wantError(t, r, http.StatusBadRequest, "invalid_target")
	r = w.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {mcpURL + "/tools"}})
	wantOK(t, r)
	if aud := claimsOf(t, r.str("access_token"))["aud"]; !audIs(aud, mcpURL+"/tools") {
		t.Errorf("narrowed aud = %v", aud)
	}
	r = w.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.str("refresh_token")}})
	wantOK(t, r)
	if aud := claimsOf(t, r.str("access_token"))["aud"]; !audIs(aud, mcpURL) {
		t.Errorf("aud after a refresh without resource = %v, want the bound %q", aud, mcpURL)
	}
}

func audIs(aud any, want string) bool {
	switch v := aud.(type) {
	case string:
		return v == want
	case []any:
		return len(v) == 1 && v[0] == want
	}
	return false
}

func TestAuthorize_AppLessClientWithoutResourceIsInvalidRequest(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, challenge := pkcePair()
	q := w.query("", challenge)
	resp, _ := w.get(t, user, q)
	wantRedirectError(t, w.env, resp, q, "invalid_request")
	if n := countRows(t, w.env, `SELECT count(*) FROM grants`); n != 0 {
		t.Errorf("%d grants written", n)
	}
}

func TestAuthorize_ResourceMustNameAnMCPApp(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	closed := w.env.NewApp(t, handlertest.UniqueEmail(t, "dev2"), store.ClientKindGPT, gptCallback) // MCP off
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, challenge := pkcePair()
	cases := map[string]string{
		"app with MCP off":   w.env.BaseURL + "/gw/" + closed.App.Slug + "/mcp",
		"unknown app":        w.env.BaseURL + "/gw/no-such-app/mcp",
		"another server":     "https://evil.example/gw/" + w.app.App.Slug + "/mcp",
		"outside the gw":     w.env.BaseURL + "/oauth/token",
		"fragment":           w.resource("/mcp") + "#x",
		"query":              w.resource("/mcp") + "?a=b",
		"dot segment":        w.resource("/../" + closed.App.Slug),
		"relative reference": "/gw/" + w.app.App.Slug + "/mcp",
	}
	for name, res := range cases {
		t.Run(name, func(t *testing.T) {
			q := w.query(res, challenge)
			resp, _ := w.get(t, user, q)
			wantRedirectError(t, w.env, resp, q, "invalid_target")
		})
	}
	t.Run("two resources", func(t *testing.T) {
		q := w.query(w.resource("/mcp"), challenge)
		q.Add("resource", w.resource(""))
		resp, _ := w.get(t, user, q)
		wantRedirectError(t, w.env, resp, q, "invalid_target")
	})
	if n := countRows(t, w.env, `SELECT count(*) FROM auth_codes`); n != 0 {
		t.Errorf("%d codes written", n)
	}
}

func TestAuthorize_RegisteredClientsMustUsePKCE(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	confidential := mustRegister(t, w.env, `{"redirect_uris":["`+claudeCallback+`"],"token_endpoint_auth_method":"client_secret_basic"}`)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	for _, id := range []string{w.reg.ClientID, confidential.ClientID} {
		q := w.query(w.resource("/mcp"), "", "code_challenge", "\x00", "code_challenge_method", "\x00", "client_id", id)
		resp, _ := w.get(t, user, q)
		wantRedirectError(t, w.env, resp, q, "invalid_request")
	}
}

func TestToken_ResourceOutsideTheCodeIsInvalidTarget(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	other := w.env.NewMCPApp(t, handlertest.UniqueEmail(t, "dev2"), "")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	mcpURL := w.resource("/mcp")
	for name, res := range map[string]string{
		"wider (the app root)": w.resource(""),
		"another app":          w.env.BaseURL + "/gw/" + other.App.Slug + "/mcp",
		"a sibling path":       w.resource("/mcpx"),
		"not a URI":            "mcp",
	} {
		t.Run(name, func(t *testing.T) {
			verifier, challenge := pkcePair()
			code := w.code(t, user, w.query(mcpURL, challenge))
			wantError(t, w.exchange(t, code, verifier, res), http.StatusBadRequest, "invalid_target")
		})
	}
	t.Run("same resource in other case and with a trailing slash", func(t *testing.T) {
		verifier, challenge := pkcePair()
		code := w.code(t, user, w.query(strings.Replace(mcpURL, "http://", "HTTP://", 1)+"/", challenge))
		r := w.exchange(t, code, verifier, mcpURL)
		wantOK(t, r)
		if aud := claimsOf(t, r.str("access_token"))["aud"]; !audIs(aud, mcpURL) {
			t.Errorf("aud = %v, want the canonical %q", aud, mcpURL)
		}
	})
}

func TestPortalClient_ResourceIsOptionalAndOwnAppOnly(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	other := w.env.NewMCPApp(t, handlertest.UniqueEmail(t, "dev2"), "")
	root := w.env.BaseURL + "/gw/" + w.app.App.Slug

	code, user := w.codeFor(t, nil, w.authorizeQuery())
	r := w.exchange(t, code)
	wantOK(t, r)
	if aud := claimsOf(t, r.str("access_token"))["aud"]; !audIs(aud, root) {
		t.Errorf("default aud = %v, want %q", aud, root)
	}
	code, _ = w.codeFor(t, user, w.authorizeQuery("resource", root+"/mcp"))
	r = w.exchange(t, code)
	wantOK(t, r)
	if aud := claimsOf(t, r.str("access_token"))["aud"]; !audIs(aud, root+"/mcp") {
		t.Errorf("aud = %v, want %q", aud, root+"/mcp")
	}
	q := w.authorizeQuery("resource", w.env.BaseURL+"/gw/"+other.App.Slug)
	resp, _ := w.authorize(t, user, q)
	wantRedirectError(t, w.env, resp, q, "invalid_target")
}

func TestGrant_OneMCPClientConnectsAUserToManyApps(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	second := w.env.NewMCPApp(t, handlertest.UniqueEmail(t, "dev2"), "")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, challenge := pkcePair()
	w.code(t, user, w.query(w.resource("/mcp"), challenge))
	// The same client for the second app: a consent of its own.
	resp, _ := w.get(t, user, w.query(w.env.BaseURL+"/gw/"+second.App.Slug+"/mcp", challenge))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("second app: authorize = %d, want its own consent page", resp.StatusCode)
	}
	w.code(t, user, w.query(w.env.BaseURL+"/gw/"+second.App.Slug+"/mcp", challenge))
	// The first app again: remembered, no page.
	resp, _ = w.get(t, user, w.query(w.resource("/mcp"), challenge))
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("remembered consent: authorize = %d, want 303", resp.StatusCode)
	}
	if n := countRows(t, w.env, `SELECT count(DISTINCT app_id) FROM grants WHERE client_id = $1 AND revoked_at IS NULL`, w.reg.ClientID); n != 2 {
		t.Errorf("live grants over %d apps, want 2", n)
	}
}

func TestMCP_SwitchingMCPOffStopsRefreshAndGatewayCalls(t *testing.T) {
	t.Parallel()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer upstream.Close()
	env := handlertest.NewWithGateway(t, nil)
	w := &mcpWorld{env: env, app: env.NewMCPApp(t, handlertest.UniqueEmail(t, "dev"), upstream.URL), reg: mustRegister(t, env, claudeDCR)}
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	verifier, challenge := pkcePair()
	tok := w.exchange(t, w.code(t, user, w.query(w.resource("/mcp"), challenge)), verifier, "")
	wantOK(t, tok)
	gatewayStatus := func() int {
		req, _ := http.NewRequest(http.MethodGet, w.resource("/mcp"), nil)
		req.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := gatewayStatus(); got != http.StatusOK {
		t.Fatalf("gateway call with MCP on = %d, want 200", got)
	}
	settings := w.app.App.Settings()
	settings.MCPEnabled = false
	if _, err := w.env.Store.UpdateAppSettings(context.Background(), w.app.Owner.ID, w.app.App.ID, settings, w.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	// The NOTIFY drops the cached app; the refresh is refused either way once it is seen.
	waitFor(t, func() bool {
		r := w.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}})
		if r.Status == http.StatusOK {
			tok = r
			return false
		}
		wantError(t, r, http.StatusBadRequest, "invalid_grant")
		return true
	})
	q := w.query(w.resource("/mcp"), challenge)
	resp, _ := w.get(t, user, q)
	wantRedirectError(t, w.env, resp, q, "invalid_target")
	// Access tokens already issued to the MCP client stop at the gateway too, at once:
	// the settings notice drops the tokens cached for the app.
	waitFor(t, func() bool { return gatewayStatus() == http.StatusUnauthorized })
}

func TestIntrospect_MCPTokenIsActiveOnlyForItsApp(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	other := w.env.NewMCPApp(t, handlertest.UniqueEmail(t, "dev2"), "")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	verifier, challenge := pkcePair()
	tok := w.exchange(t, w.code(t, user, w.query(w.resource("/mcp"), challenge)), verifier, "")
	wantOK(t, tok)
	ww := &world{env: w.env}
	for _, tc := range []struct {
		caller handlertest.AppFixture
		active bool
	}{{w.app, true}, {other, false}} {
		for _, token := range []string{tok.str("access_token"), tok.str("refresh_token")} {
			r := ww.post(t, oauth.PathIntrospect, url.Values{"token": {token}}, tc.caller.Client.ID, tc.caller.Secret)
			if r.Status != http.StatusOK || r.Body["active"] != tc.active {
				t.Errorf("introspect by %s = %d %s, want active=%v", tc.caller.App.Slug, r.Status, r.Raw, tc.active)
			}
		}
	}
}

// waitFor polls cond until it holds (a NOTIFY crossing instances takes a moment); it
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

func (w *mcpWorld) exchangeAs(t *testing.T, clientID, code, verifier string) tokenResult {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {claudeCallback},
		"code_verifier": {verifier}, "client_id": {clientID}}
	return (&world{env: w.env}).post(t, oauth.PathToken, form, "", "")
}

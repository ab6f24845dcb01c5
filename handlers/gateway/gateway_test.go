package gateway_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/handlers/handlertest"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/signingkeys"
)

func TestGateway_NoTokenIs401WithResourceMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	resp, body := e.call(t, "GET", "/gw/"+f.App.Slug+"/items", "", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401; body %s", resp.StatusCode, body)
	}
	want := `Bearer realm="authgpts", error_description="This API needs an access token: send Authorization: Bearer <token>.", ` +
		`resource_metadata="` + e.BaseURL + `/.well-known/oauth-protected-resource/gw/` + f.App.Slug + `"`
	if got := resp.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate = %q\nwant %q", got, want)
	}
	if strings.Contains(resp.Header.Get("WWW-Authenticate"), "error=") {
		t.Error("RFC 6750 §3.1: no error attribute when the request had no token")
	}
	if m := jsonBody(t, body); m["error"] != "unauthorized" {
		t.Errorf("body = %s", body)
	}
	if f.Upstream.count() != 0 {
		t.Error("the upstream was called without a token")
	}
	if ev := e.events(t, f.App.ID); len(ev) != 1 || ev[0].Status != 401 || ev[0].ClientID != "" {
		t.Errorf("usage events = %+v, want one 401 without client", ev)
	}
}

func TestGateway_MCPPathNamesItsOwnMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindPublic, "mcp_enabled = true")
	resp, _ := e.call(t, "POST", "/gw/"+f.App.Slug+"/mcp", "", strings.NewReader(`{}`))
	want := `resource_metadata="` + e.BaseURL + `/.well-known/oauth-protected-resource/gw/` + f.App.Slug + `/mcp"`
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), want) {
		t.Errorf("status %d, WWW-Authenticate = %q, want it to hold %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
}

func TestGateway_TokenInQueryRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	tok, _, _ := e.userToken(t, f, "openid")
	for _, tc := range []struct{ name, header string }{{"query only", ""}, {"query and header", tok}} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.call(t, "GET", "/gw/"+f.App.Slug+"/items?access_token="+tok, tc.header, nil)
			if resp.StatusCode != http.StatusBadRequest || jsonBody(t, body)["error"] != "invalid_request" {
				t.Fatalf("status = %d body %s, want 400 invalid_request", resp.StatusCode, body)
			}
			if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`) {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	if f.Upstream.count() != 0 {
		t.Error("a call with the token in the URL reached the upstream")
	}
}

func TestGateway_BearerSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	tok, _, _ := e.userToken(t, f, "openid")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		resp, body := e.call(t, "GET", "/gw/"+f.App.Slug+"/items", "", nil, "Authorization", scheme+" "+tok)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status = %d, body %s", scheme, resp.StatusCode, body)
		}
	}
	resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/items", "", nil, "Authorization", "Basic "+tok)
	if resp.StatusCode != 401 {
		t.Errorf("Basic scheme: status = %d, want 401", resp.StatusCode)
	}
}

func TestGateway_InvalidTokensAre401(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	other := e.newApp(t, store.ClientKindGPT)
	aud := []string{e.BaseURL + "/gw/" + f.App.Slug}
	now := e.Clock.Now()
	_, user, grant := e.userToken(t, f, "openid")
	base := oauth.AccessClaims{Subject: user.ID, GrantID: grant, ClientID: f.Client.ID, Scope: "openid", Audience: aud}

	otherKey, err := oauth.GenerateKey(oauth.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	foreign := func() string {
		c := base
		c.Issuer, c.IssuedAt, c.Expiry, c.JTI = e.BaseURL, now, now.Add(time.Hour), "x"
		ks, err := oauth.NewKeySet(otherKey)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ks.SignAccessToken(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	with := func(mod func(*oauth.AccessClaims)) string {
		c := base
		mod(&c)
		return e.sign(t, c)
	}
	idLike, err := e.Instance.Keys.KeySet().SignIDToken(oauth.IDClaims{Issuer: e.BaseURL, Subject: user.ID, Audience: aud[0], IssuedAt: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// A real token with its payload changed (scope widened), and the same payload with
	// alg "none" and no signature.
	real, _, _ := e.userToken(t, f, "openid")
	parts := strings.Split(real, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	widened := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"scope":"openid"`, `"scope":"openid admin"`, 1)))
	if widened == parts[1] {
		t.Fatalf("payload %s has no scope claim to widen", payload)
	}
	tampered := parts[0] + "." + widened + "." + parts[2]
	algNone := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."
	tests := []struct {
		name  string
		token string
		desc  string
	}{
		{"garbage", "not.a.jwt", "malformed"},
		{"tampered payload", tampered, ""},
		{"alg none", algNone, ""},
		{"signed by another key", foreign, "unknown key"},
		{"expired", with(func(c *oauth.AccessClaims) { c.IssuedAt, c.Expiry = now.Add(-2*time.Hour), now.Add(-time.Hour) }), "expired"},
		{"not yet valid", with(func(c *oauth.AccessClaims) { c.NotBefore = now.Add(time.Hour) }), "not valid yet"},
		{"another issuer", with(func(c *oauth.AccessClaims) { c.Issuer = "https://evil.example" }), "another issuer"},
		{"another app's audience", with(func(c *oauth.AccessClaims) { c.Audience = []string{e.BaseURL + "/gw/" + other.App.Slug} }), "another API"},
		{"a prefix-sharing audience", with(func(c *oauth.AccessClaims) { c.Audience = []string{aud[0] + "x"} }), "another API"},
		{"an ID token", idLike, "not an access token"},
		{"unknown grant", with(func(c *oauth.AccessClaims) { c.GrantID = "6f1d9c39-8d5e-4a7f-9a55-0a4d4c3b2a10" }), "no longer exists"},
		{"grant of another user", with(func(c *oauth.AccessClaims) { c.Subject = other.Owner.ID }), "revoked"},
		{"another app's client", with(func(c *oauth.AccessClaims) { c.ClientID = other.Client.ID }), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.call(t, "GET", "/gw/"+f.App.Slug+"/items", tc.token, nil)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", resp.StatusCode, body)
			}
			m := jsonBody(t, body)
			if m["error"] != "invalid_token" || !strings.Contains(m["error_description"].(string), tc.desc) {
				t.Errorf("body = %s, want invalid_token mentioning %q", body, tc.desc)
			}
			wa := resp.Header.Get("WWW-Authenticate")
			if !strings.Contains(wa, `error="invalid_token"`) || !strings.Contains(wa, `resource_metadata="`+e.BaseURL+`/.well-known/oauth-protected-resource/gw/`+f.App.Slug+`"`) {
				t.Errorf("WWW-Authenticate = %q", wa)
			}
		})
	}
	if f.Upstream.count() != 0 {
		t.Errorf("the upstream got %d calls with invalid tokens", f.Upstream.count())
	}
}

// revocations are the real ways a token stops working, each as the server does it: the
// client revoking its refresh token (RFC 7009), the user revoking the app on /account, a
// grant revocation through the store (what the OAuth server's replay detection calls),
// and the admin console's suspensions. want is the error description the gateway then answers with.
func revocations(e *env) []struct {
	name   string
	revoke func(t *testing.T, f fixture, toks handlertest.Tokens)
	desc   string
} {
	suspend := func(t *testing.T, targetType, targetID string) {
		t.Helper()
		resp, body := e.PostForm(t, e.adminClient(t), "/admin/suspend", url.Values{"target_type": {targetType}, "target_id": {targetID},
			"action": {"suspend"}, "reason": {"test: abuse"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST /admin/suspend %s = %d, want 303: %.300s", targetType, resp.StatusCode, body)
		}
	}
	return []struct {
		name   string
		revoke func(t *testing.T, f fixture, toks handlertest.Tokens)
		desc   string
	}{
		{"refresh token revoked at /oauth/revoke", func(t *testing.T, f fixture, toks handlertest.Tokens) {
			resp, body := e.PostForm(t, http.DefaultClient, oauth.PathRevoke, url.Values{"token": {toks.Refresh},
				"token_type_hint": {"refresh_token"}, "client_id": {f.Client.ID}, "client_secret": {f.Secret}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /oauth/revoke = %d: %s", resp.StatusCode, body)
			}
		}, "revoked"},
		{"app revoked by the user on /account", func(t *testing.T, _ fixture, toks handlertest.Tokens) {
			resp, body := e.PostForm(t, e.userSession(t, toks.Claims.GrantID), "/account/grants/"+toks.Claims.GrantID+"/revoke", nil)
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("POST /account/grants/…/revoke = %d: %.300s", resp.StatusCode, body)
			}
		}, "revoked"},
		{"grant revoked (store.RevokeGrant)", func(t *testing.T, _ fixture, toks handlertest.Tokens) {
			if ok, err := e.Store.RevokeGrant(context.Background(), toks.Claims.GrantID, e.Clock.Now()); !ok || err != nil {
				t.Fatalf("RevokeGrant = %v, %v", ok, err)
			}
		}, "revoked"},
		{"client suspended by an admin", func(t *testing.T, f fixture, _ handlertest.Tokens) {
			suspend(t, store.TargetClient, f.Client.ID)
		}, "client of this access token is suspended"},
		{"user suspended by an admin", func(t *testing.T, _ fixture, toks handlertest.Tokens) {
			suspend(t, store.TargetUser, toks.Claims.Subject)
		}, "user of this access token is suspended"},
		{"app suspended by an admin", func(t *testing.T, f fixture, _ handlertest.Tokens) {
			suspend(t, store.TargetApp, f.App.ID)
		}, "suspended"},
	}
}

func TestGateway_RevokedAndSuspendedTokensAre401(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range revocations(e) {
		t.Run(tc.name, func(t *testing.T) {
			f := e.newApp(t, store.ClientKindGPT)
			toks, _ := e.userTokens(t, f, "openid")
			if resp, body := e.call(t, "GET", "/gw/"+f.App.Slug+"/a", toks.Access, nil); resp.StatusCode != 200 {
				t.Fatalf("before: status %d body %s", resp.StatusCode, body)
			}
			tc.revoke(t, f, toks)
			resp, body := waitStatus(t, e.BaseURL, "/gw/"+f.App.Slug+"/a", toks.Access, http.StatusUnauthorized)
			if m := jsonBody(t, body); m["error"] != "invalid_token" || !strings.Contains(m["error_description"].(string), tc.desc) {
				t.Errorf("status %d body %s, want invalid_token mentioning %q", resp.StatusCode, body, tc.desc)
			}
		})
	}
}

// waitStatus polls path until it answers want, failing after a deadline: the
// revocation arrives asynchronously (NOTIFY), within a second by design.
func waitStatus(t testing.TB, base, path, token string, want int) (*http.Response, []byte) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		resp, body := do(t, base, "GET", path, token, nil)
		if resp.StatusCode == want {
			return resp, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s still answers %d (%s) after 1 s, want %d", path, resp.StatusCode, body, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestGateway_RevocationReachesSecondInstanceWithinASecond: a token cached by two
// gateway instances on one database stops working on the other instance too, within a
// second (NOTIFY), for every real way of revoking it.
func TestGateway_RevocationReachesSecondInstanceWithinASecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	second, gw2 := e.secondInstance(t, nil)
	for _, tc := range revocations(e) {
		t.Run(tc.name, func(t *testing.T) {
			f := e.newApp(t, store.ClientKindGPT)
			toks, _ := e.userTokens(t, f, "openid")
			for _, base := range []string{e.BaseURL, second} {
				// Twice, so both instances hold the token in their caches.
				for range 2 {
					if resp, body := do(t, base, "GET", "/gw/"+f.App.Slug+"/x", toks.Access, nil); resp.StatusCode != 200 {
						t.Fatalf("%s before revocation: %d %s", base, resp.StatusCode, body)
					}
				}
			}
			if e.GW.Stats().TokenCacheSize == 0 || gw2.Stats().TokenCacheSize == 0 {
				t.Fatal("the token is not cached on both instances: the test would prove nothing")
			}
			tc.revoke(t, f, toks)
			_, body := waitStatus(t, second, "/gw/"+f.App.Slug+"/x", toks.Access, http.StatusUnauthorized)
			if d, _ := jsonBody(t, body)["error_description"].(string); !strings.Contains(d, tc.desc) {
				t.Errorf("second instance: %s, want a description mentioning %q", body, tc.desc)
			}
			waitStatus(t, e.BaseURL, "/gw/"+f.App.Slug+"/x", toks.Access, http.StatusUnauthorized)
		})
	}
}

// TestGateway_KeyRotatedOnAnotherInstanceIsPickedUp: instance A rotates the access-token
// key (`authgpts keys rotate`) and issues a token with the new key; instance B, whose key
// manager never hears the NOTIFY, reloads its keys when the token names an unknown kid
// and accepts it.
func TestGateway_KeyRotatedOnAnotherInstanceIsPickedUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	keysB, err := signingkeys.NewKeys(ctx, e.Store, e.Instance.Derived.KeyEncryption, e.Clock.Now, e.Config.Log) // no Watch: deaf to NOTIFY
	if err != nil {
		t.Fatal(err)
	}
	second, _ := e.secondInstance(t, keysB)
	f := e.newApp(t, store.ClientKindGPT)
	old, _, _ := e.userToken(t, f, "openid")
	if resp, body := do(t, second, "GET", "/gw/"+f.App.Slug+"/x", old, nil); resp.StatusCode != 200 {
		t.Fatalf("before rotation: %d %s", resp.StatusCode, body)
	}

	newKid, err := e.Instance.Keys.Rotate(ctx, oauth.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if keysB.KeySet().HasKey(newKid) {
		t.Fatal("instance B already knows the new key: the test would prove nothing")
	}
	fresh, _, _ := e.userToken(t, f, "openid")
	if oauth.TokenKeyID(fresh) != newKid {
		t.Fatalf("the new token is signed with %q, want the rotated-in key %q", oauth.TokenKeyID(fresh), newKid)
	}
	if resp, body := do(t, second, "GET", "/gw/"+f.App.Slug+"/x", fresh, nil); resp.StatusCode != 200 {
		t.Errorf("instance B refused a token signed with the key rotated in on A: %d %s", resp.StatusCode, body)
	}
	// The retired key stays valid until its tokens expire.
	if resp, body := do(t, second, "GET", "/gw/"+f.App.Slug+"/y", old, nil); resp.StatusCode != 200 {
		t.Errorf("a token of the retired key: %d %s", resp.StatusCode, body)
	}
}

// The sub-resource token is hand-made: the token endpoint binds `resource` (RFC 8707) into
// aud only once the MCP work lands; the grant behind it is real.
func TestGateway_SubResourceAudienceCoversOnlyItsPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindPublic, "mcp_enabled = true")
	_, user, grant := e.userToken(t, f, "openid")
	tok := e.sign(t, oauth.AccessClaims{Subject: user.ID, GrantID: grant, ClientID: f.Client.ID, Scope: "openid",
		Audience: []string{e.BaseURL + "/gw/" + f.App.Slug + "/mcp"}})
	tests := []struct {
		path string
		want int
	}{
		{"/mcp", 200}, {"/mcp/", 200}, {"/mcp/tools", 200}, {"/mcpx", 401}, {"/other", 401}, {"", 401},
	}
	for _, tc := range tests {
		resp, body := e.call(t, "GET", "/gw/"+f.App.Slug+tc.path, tok, nil)
		if resp.StatusCode != tc.want {
			t.Errorf("GET %q = %d, want %d; body %s", tc.path, resp.StatusCode, tc.want, body)
		}
	}
}

func TestGateway_ScopeRulesRefuseWithInsufficientScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	if err := e.Store.SetScopeRules(context.Background(), f.App.ID, []store.ScopeRule{
		{Method: "*", PathPrefix: "/admin", Scope: "admin"},
		{Method: "DELETE", PathPrefix: "/items", Scope: "write"},
	}, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.addScopes(t, f, "admin", "write")
	reader, _, _ := e.userToken(t, f, "openid email")
	admin, _, _ := e.userToken(t, f, "openid admin write")
	tests := []struct {
		token, method, path string
		want                int
		scope               string
	}{
		{reader, "GET", "/items/1", 200, ""},
		{reader, "DELETE", "/items/1", 403, "write"},
		{reader, "GET", "/admin", 403, "admin"},
		{reader, "GET", "/admin/users", 403, "admin"},
		{reader, "GET", "/administrator", 200, ""}, // segment-wise prefixes
		{admin, "DELETE", "/items/1", 200, ""},
		{admin, "GET", "/admin/users", 200, ""},
	}
	for _, tc := range tests {
		resp, body := e.call(t, tc.method, "/gw/"+f.App.Slug+tc.path, tc.token, nil)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d; %s", tc.method, tc.path, resp.StatusCode, tc.want, body)
			continue
		}
		if tc.want == 403 {
			m := jsonBody(t, body)
			wa := resp.Header.Get("WWW-Authenticate")
			if m["error"] != "insufficient_scope" || m["scope"] != tc.scope ||
				!strings.Contains(wa, `error="insufficient_scope"`) || !strings.Contains(wa, `scope="`+tc.scope+`"`) ||
				!strings.Contains(wa, `resource_metadata="`) {
				t.Errorf("%s %s: body %s, WWW-Authenticate %q", tc.method, tc.path, body, wa)
			}
		}
	}
}

func TestGateway_DotSegmentsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	tok, _, _ := e.userToken(t, f, "openid")
	for _, p := range []string{"/a/../admin", "/%2e%2e/admin", "/a/./b", "//admin"} {
		req, _ := http.NewRequest("GET", e.BaseURL+"/gw/"+f.App.Slug+p, nil)
		req.URL.RawPath = "" // send the path as written
		req.URL.Opaque = "//" + req.URL.Host + "/gw/" + f.App.Slug + p
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", p, resp.StatusCode)
		}
	}
	if f.Upstream.count() != 0 {
		t.Error("a path with dot segments reached the upstream")
	}
}

func TestGateway_ForwardsWithIdentityHeadersOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	tok, user, _ := e.userToken(t, f, "openid email")
	resp, body := e.call(t, "POST", "/gw/"+f.App.Slug+"/items/a%2Fb?q=1&x=y", tok, strings.NewReader(`{"a":1}`),
		"X-AuthGPTs-User", "forged-admin", "x-authgpts-email", "ceo@example.com", "X-AuthGPTs-Assertion", "forged",
		"Cookie", "agpt_session=secret-session", "Content-Type", "application/json", "X-Custom", "kept")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	var got seen
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "POST" || got.Path != "/v1/items/a/b" || got.RawPath != "/v1/items/a%2Fb" || got.RawQuery != "q=1&x=y" || got.Body != `{"a":1}` {
		t.Errorf("upstream saw %s %s (raw %s) ?%s body %q", got.Method, got.Path, got.RawPath, got.RawQuery, got.Body)
	}
	h := got.Header
	wantHeaders := map[string]string{
		"X-Authgpts-User":   user.ID,
		"X-Authgpts-Email":  user.Email,
		"X-Authgpts-Scopes": "openid email",
		"X-Authgpts-Client": f.Client.ID,
		"X-Custom":          "kept",
		"Authorization":     "",
		"Cookie":            "",
	}
	for k, want := range wantHeaders {
		if vals := h.Values(k); strings.Join(vals, ",") != want {
			t.Errorf("upstream header %s = %q, want %q", k, vals, want)
		}
	}
	if len(h.Values("X-Authgpts-Assertion")) != 1 || h.Get("X-Authgpts-Assertion") == "forged" {
		t.Errorf("assertion header = %q", h.Values("X-Authgpts-Assertion"))
	}
	if resp.Header.Get("Set-Cookie") != "" {
		t.Error("the upstream's Set-Cookie reached the caller on the AuthGPTs origin")
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("response headers %v lack nosniff/sandbox", resp.Header)
	}

	// Without the email scope there is no email, in the header or the assertion.
	tok2, _, _ := e.userToken(t, f, "openid")
	_, body = e.call(t, "GET", "/gw/"+f.App.Slug, tok2, nil)
	got = seen{}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Header.Get("X-Authgpts-Email") != "" || got.Path != "/v1" {
		t.Errorf("without email scope: email %q, path %q", got.Header.Get("X-Authgpts-Email"), got.Path)
	}
	a, err := e.Instance.Keys.KeySet().VerifyGatewayAssertion(got.Header.Get("X-Authgpts-Assertion"), time.Now(), e.BaseURL, f.App.UpstreamURL)
	if err != nil || a.Email != "" {
		t.Errorf("assertion %+v, %v", a, err)
	}
}

func TestGateway_AssertionVerifiesWithPublishedJWKS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	tok, user, _ := e.userToken(t, f, "openid email")
	_, body := e.call(t, "GET", "/gw/"+f.App.Slug+"/me", tok, nil)
	var got seen
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	resp, jwks := e.call(t, "GET", "/.well-known/jwks.json", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("JWKS: %d", resp.StatusCode)
	}
	ks, err := oauth.NewVerifyingKeySet(jwks)
	if err != nil {
		t.Fatal(err)
	}
	raw := got.Header.Get(gateway.HeaderAssertion)
	a, err := ks.VerifyGatewayAssertion(raw, time.Now(), e.BaseURL, f.App.UpstreamURL)
	if err != nil {
		t.Fatalf("VerifyGatewayAssertion: %v", err)
	}
	if a.Subject != user.ID || a.ClientID != f.Client.ID || a.Scope != "openid email" || a.Email != user.Email || a.JTI == "" {
		t.Errorf("assertion = %+v", a)
	}
	if ttl := a.Expiry.Sub(a.IssuedAt); ttl <= 0 || ttl > 60*time.Second {
		t.Errorf("assertion lifetime = %v, want (0, 60 s]", ttl)
	}
	if _, err := ks.VerifyGatewayAssertion(raw, time.Now(), e.BaseURL, "https://other-upstream.example"); err == nil {
		t.Error("the assertion verified for another upstream")
	}
	if _, err := ks.VerifyAccessToken(raw, time.Now(), e.BaseURL); err == nil {
		t.Error("the assertion passed as an access token")
	}
	if _, err := ks.VerifyGatewayAssertion(tok, time.Now(), e.BaseURL, f.App.UpstreamURL); err == nil {
		t.Error("an access token passed as an assertion")
	}
}

func TestGateway_SSEEventsArriveBeforeUpstreamFinishes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindPublic, "mcp_enabled = true")
	tok, _, _ := e.userToken(t, f, "openid")
	req, _ := http.NewRequest("GET", e.BaseURL+"/gw/"+f.App.Slug+"/mcp/sse", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	for _, ev := range []string{"one", "two", "three"} {
		// The upstream is still open (blocked on the channel) while we read each event.
		f.Upstream.sse <- ev
		line, err := r.ReadString('\n')
		if err != nil || line != "data: "+ev+"\n" {
			t.Fatalf("read %q, %v; want the event %q before the stream ends", line, err, ev)
		}
		_, _ = r.ReadString('\n')
	}
	close(f.Upstream.sse)
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Errorf("trailing data %q", rest)
	}
}

func TestGateway_UpstreamFailureIs502AndRefunds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT, "metering_enabled = true, credits_per_call = 3, free_credits = 10")
	tok, user, _ := e.userToken(t, f, "openid")
	ctx := context.Background()
	balance := func() int64 {
		b, err := e.Store.CreditBalance(ctx, f.App.ID, user.ID)
		if err != nil {
			t.Fatal(err)
		}
		return b.Balance
	}
	if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/ok", tok, nil); resp.StatusCode != 200 || balance() != 7 {
		t.Fatalf("a good call: status %d, balance %d, want 200 and 7", resp.StatusCode, balance())
	}
	if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/missing", tok, nil); resp.StatusCode != 404 || balance() != 4 {
		t.Fatalf("an upstream 404 is charged: status %d, balance %d, want 404 and 4", resp.StatusCode, balance())
	}
	if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/fail", tok, nil); resp.StatusCode != 500 || balance() != 4 {
		t.Fatalf("an upstream 500 is refunded: status %d, balance %d, want 500 and 4", resp.StatusCode, balance())
	}
	f.Upstream.Close() // never reached
	resp, body := e.call(t, "GET", "/gw/"+f.App.Slug+"/ok", tok, nil)
	if resp.StatusCode != http.StatusBadGateway || jsonBody(t, body)["error"] != "bad_gateway" || balance() != 4 {
		t.Fatalf("upstream down: status %d body %s balance %d, want 502 bad_gateway and 4", resp.StatusCode, body, balance())
	}
	ev := e.events(t, f.App.ID)
	var credits []int64
	var statuses []int
	for _, x := range ev {
		credits, statuses = append(credits, x.Credits), append(statuses, x.Status)
	}
	if len(ev) != 4 || credits[0] != 3 || credits[1] != 3 || credits[2] != 0 || credits[3] != 0 || statuses[3] != 502 {
		t.Errorf("usage credits %v statuses %v, want [3 3 0 0] ending in 502", credits, statuses)
	}
}

func TestGateway_CreditsExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const free, cost, calls = 60, 3, 40 // 20 calls can be paid, 20 cannot
	f := e.newApp(t, store.ClientKindGPT, "metering_enabled = true, credits_per_call = 3, free_credits = 60, rate_limit_per_minute = 0")
	tok, user, _ := e.userToken(t, f, "openid")
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range calls {
		wg.Go(func() {
			resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil)
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	b, err := e.Store.CreditBalance(context.Background(), f.App.ID, user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Balance != 0 || b.Spent != free || codes[200] != free/cost || codes[402] != calls-free/cost {
		t.Errorf("balance %d spent %d, codes %v; want 0, %d, 200×%d and 402×%d", b.Balance, b.Spent, codes, free, free/cost, calls-free/cost)
	}
	if f.Upstream.count() != free/cost {
		t.Errorf("upstream got %d calls, want %d", f.Upstream.count(), free/cost)
	}
}

func TestGateway_NoCreditsIs402WithReadableJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT, "metering_enabled = true, credits_per_call = 5, free_credits = 4")
	tok, _, _ := e.userToken(t, f, "openid")
	resp, body := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil)
	m := jsonBody(t, body)
	if resp.StatusCode != http.StatusPaymentRequired || m["error"] != "insufficient_credits" || m["balance"] != 4.0 ||
		m["credits_per_call"] != 5.0 || !strings.Contains(m["error_description"].(string), f.App.Name) {
		t.Errorf("status %d body %s", resp.StatusCode, body)
	}
	if f.Upstream.count() != 0 {
		t.Error("an unpaid call reached the upstream")
	}
	// Service (client_credentials) calls have no end user and are not metered.
	svc := e.newApp(t, store.ClientKindService, "metering_enabled = true, credits_per_call = 5, free_credits = 0")
	if resp, body := e.call(t, "GET", "/gw/"+svc.App.Slug+"/x", e.serviceToken(t, svc, ""), nil); resp.StatusCode != 200 {
		t.Errorf("service call: %d %s", resp.StatusCode, body)
	}
}

func TestGateway_RateLimitIs429WithRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT, "rate_limit_per_minute = 3, metering_enabled = true, free_credits = 100")
	tok, user, _ := e.userToken(t, f, "openid")
	other, _, _ := e.userToken(t, f, "openid")
	var last *http.Response
	var body []byte
	for range 4 {
		last, body = e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil)
	}
	m := jsonBody(t, body)
	ra := last.Header.Get("Retry-After")
	if last.StatusCode != http.StatusTooManyRequests || m["error"] != "rate_limited" || ra == "" || ra == "0" || len(ra) > 2 {
		t.Fatalf("4th call: %d Retry-After %q body %s", last.StatusCode, ra, body)
	}
	if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", other, nil); resp.StatusCode != 200 {
		t.Errorf("another user is limited too: %d", resp.StatusCode)
	}
	b, _ := e.Store.CreditBalance(context.Background(), f.App.ID, user.ID)
	if b.Spent != 3 {
		t.Errorf("spent %d, want 3: a rate-limited call must not be charged", b.Spent)
	}
	// A minute later the bucket has refilled.
	e.Clock.Advance(time.Minute)
	if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil); resp.StatusCode != 200 {
		t.Errorf("next minute: %d, want 200", resp.StatusCode)
	}
}

func TestGateway_BodyLimitIs413(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *gateway.Config) { c.MaxBodyBytes = 1024 })
	f := e.newApp(t, store.ClientKindGPT, "metering_enabled = true, free_credits = 10")
	tok, user, _ := e.userToken(t, f, "openid")
	big := strings.Repeat("x", 2048)
	resp, body := e.call(t, "POST", "/gw/"+f.App.Slug+"/upload", tok, strings.NewReader(big))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || jsonBody(t, body)["error"] != "request_too_large" {
		t.Errorf("declared length: %d %s", resp.StatusCode, body)
	}
	// Chunked, so the size is only known while streaming to the upstream.
	resp, body = e.call(t, "POST", "/gw/"+f.App.Slug+"/upload", tok, io.MultiReader(strings.NewReader(big)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: %d %s", resp.StatusCode, body)
	}
	if b, err := e.Store.CreditBalance(context.Background(), f.App.ID, user.ID); err == nil && b.Balance != 10 {
		t.Errorf("balance %d, want 10: refused uploads are not charged", b.Balance)
	}
}

func TestGateway_PreflightAndCORS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	resp, _ := e.call(t, "OPTIONS", "/gw/"+f.App.Slug+"/mcp", "", nil, "Origin", "https://inspector.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = e.call(t, "GET", "/gw/"+f.App.Slug+"/x", "", nil, "Origin", "https://inspector.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("401 is not readable cross-origin: %v", resp.Header)
	}
}

func TestGateway_UnknownAppIs404(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp, body := e.call(t, "GET", "/gw/no-such-app/x", "", nil)
	if resp.StatusCode != 404 || jsonBody(t, body)["error"] != "not_found" {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

func TestGateway_NoTokenInLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	tok, _, _ := e.userToken(t, f, "openid")
	e.call(t, "GET", "/gw/"+f.App.Slug+"/x?access_token="+tok, "", nil)
	e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil)
	f.Upstream.Close()
	e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil)
	sig := tok[strings.LastIndex(tok, ".")+1:]
	if logs := e.Logs.String(); strings.Contains(logs, sig) || !strings.Contains(logs, "upstream failed") {
		t.Errorf("logs hold the token or miss the upstream failure:\n%s", logs)
	}
}

func TestGateway_LeasedCreditsAreExactAfterClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const free, calls = 100000, 300
	f := e.newApp(t, store.ClientKindGPT, "metering_enabled = true, credits_per_call = 1, free_credits = 100000, rate_limit_per_minute = 0")
	tok, user, _ := e.userToken(t, f, "openid")
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range calls / 6 {
				if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil); resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	e.call(t, "GET", "/gw/"+f.App.Slug+"/fail", tok, nil) // refunded into the lease
	b, _ := e.Store.CreditBalance(context.Background(), f.App.ID, user.ID)
	if b.Balance == free-calls {
		t.Log("no credits were leased: the test checks nothing about leases")
	}
	if err := e.GW.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := e.Store.CreditBalance(context.Background(), f.App.ID, user.ID)
	if err != nil || b.Balance != free-calls || b.Spent != calls {
		t.Errorf("after Close: balance %d spent %d (%v), want %d and %d", b.Balance, b.Spent, err, free-calls, calls)
	}
}

func TestGateway_AppSettingsApplyOnNotify(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *gateway.Config) { c.AppCacheTTL = time.Hour })
	f := e.newApp(t, store.ClientKindGPT)
	tok, _, _ := e.userToken(t, f, "openid")
	if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil); resp.StatusCode != 200 {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	// The portal's edit: a rate limit of 0 calls is "unlimited", so use an upstream change
	// the caller can see: the app now points at an address where nothing listens.
	gone := newUpstream(t)
	gone.Close()
	e.exec(t, `UPDATE apps SET upstream_url = $2 WHERE id = $1`, f.App.ID, gone.URL)
	e.exec(t, `SELECT pg_notify($1, $2::text)`, store.ChannelAppChanged, f.App.ID)
	waitStatus(t, e.BaseURL, "/gw/"+f.App.Slug+"/x", tok, http.StatusBadGateway)
}

// TestGateway_RequestLineIsDebugUnlessItFails: every call is a usage event, so its
// request log line is at debug level (off in production), except a 5xx, logged as an
// error.
func TestGateway_RequestLineIsDebugUnlessItFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT)
	tok, _, _ := e.userToken(t, f, "openid")
	e.call(t, "GET", "/gw/"+f.App.Slug+"/ok", tok, nil)
	f.Upstream.Close()
	e.call(t, "GET", "/gw/"+f.App.Slug+"/down", tok, nil)
	levels := map[string]string{}
	for _, line := range strings.Split(e.Logs.String(), "\n") {
		var l struct{ Level, Msg, Path string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" && strings.HasPrefix(l.Path, "/gw/") {
			levels[l.Path] = l.Level
		}
	}
	if levels["/gw/"+f.App.Slug+"/ok"] != "DEBUG" || levels["/gw/"+f.App.Slug+"/down"] != "ERROR" {
		t.Errorf("request line levels %v, want DEBUG for the 200 and ERROR for the 502", levels)
	}
}

// TestGateway_CachesOffWhileTheListenerIsDisconnected: while the LISTEN connection is
// down a revocation could be missed, so the token cache is off; after the reconnection
// it is back on, empty, and revocations arrive again.
func TestGateway_CachesOffWhileTheListenerIsDisconnected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if !e.GW.Stats().CacheEnabled {
		t.Fatal("caches off with a live listener")
	}
	// Kill the server side of every LISTEN connection of this test database, again until
	// the gateway notices: pg_stat_activity shows a backend's latest statement, which is
	// not the LISTEN while the listener pings.
	terminate := func() {
		if _, err := e.Store.DB().Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'`); err != nil {
			t.Fatal(err)
		}
	}
	terminate()
	sawOff := false
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; ; i++ {
		on := e.GW.Stats().CacheEnabled
		sawOff = sawOff || !on
		if !sawOff && i%100 == 0 {
			terminate()
		}
		if sawOff && on {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache states: saw off = %v, back on = %v; want off, then on after the reconnection", sawOff, on)
		}
		time.Sleep(time.Millisecond)
	}
	// Revocations flow again after the reconnection.
	f := e.newApp(t, store.ClientKindGPT, "metering_enabled = false")
	tok, _, grant := e.userToken(t, f, "openid")
	if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("call before revocation = %d", resp.StatusCode)
	}
	if _, err := e.Store.RevokeGrant(context.Background(), grant, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e.BaseURL, "/gw/"+f.App.Slug+"/x", tok, http.StatusUnauthorized)
}

package resource_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/resource"
	"github.com/authgpts/authgpts/store"
)

// world is a real AuthGPTs server (discovery, JWKS, token endpoint, gateway) with an
// app "notes" that has a notes.read and a notes.admin scope, and the developer's API
// using the middleware as the README shows.
type world struct {
	env      *handlertest.Env
	app      handlertest.AppFixture
	audience string
	jwksHits atomic.Int64 // JWKS fetches made by the API's verifier
	verifier *resource.Verifier
	api      *httptest.Server
}

// apiPrefix is the path of the app's upstream URL (as set in the portal) on the API.
const apiPrefix = "/v1"

func newWorld(t *testing.T, cfg func(*resource.Config)) *world {
	t.Helper()
	w := &world{env: handlertest.NewWithGateway(t, nil)}
	w.app = w.env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://chatgpt.com/aip/g-notes/oauth/callback")
	ctx := context.Background()
	for _, s := range []string{"notes.read", "notes.admin"} {
		if err := w.env.Store.CreateScope(ctx, w.app.Owner.ID, w.app.App.ID, store.Scope{Name: s, Description: "Notes " + s}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	w.audience = w.env.BaseURL + "/gw/" + w.app.App.Slug

	c := resource.Config{
		Issuer:           w.env.BaseURL,
		Audience:         []string{w.audience},
		ResourceMetadata: w.env.BaseURL + "/.well-known/oauth-protected-resource/gw/" + w.app.App.Slug,
		HTTPClient:       &http.Client{Timeout: 10 * time.Second, Transport: countJWKS{&w.jwksHits, http.DefaultTransport}},
	}
	if cfg != nil {
		cfg(&c)
	}
	v, err := resource.New(c)
	if err != nil {
		t.Fatal(err)
	}
	w.verifier = v
	mux := http.NewServeMux()
	whoami := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c, ok := resource.FromContext(r.Context())
		if !ok {
			t.Error("no claims in the context")
		}
		_ = json.NewEncoder(rw).Encode(c)
	})
	mux.Handle("/notes", v.Require("notes.read")(whoami))
	mux.Handle("/admin", v.Require("notes.admin")(whoami))
	w.api = httptest.NewServer(mux)
	t.Cleanup(w.api.Close)
	// The gateway forwards /gw/<slug>/<path> to <api>/v1/<path>; the API checks the
	// gateway's assertion for that upstream.
	mux.Handle(apiPrefix+"/via-gateway", v.RequireGateway(w.upstream(), "notes.read")(whoami))
	if _, err := w.env.Store.DB().Exec(`UPDATE apps SET upstream_url = $2 WHERE id = $1`, w.app.App.ID, w.upstream()); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) upstream() string { return w.api.URL + apiPrefix }

// countJWKS counts the verifier's JWKS fetches.
type countJWKS struct {
	n    *atomic.Int64
	next http.RoundTripper
}

func (c countJWKS) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/jwks.json") {
		c.n.Add(1)
	}
	return c.next.RoundTrip(r)
}

// token runs the real authorization-code flow for a new user.
func (w *world) token(t *testing.T, scope string) handlertest.Tokens {
	t.Helper()
	return w.env.UserToken(t, w.app, handlertest.UniqueEmail(t, "ann"), scope)
}

func get(t *testing.T, url, auth string, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not JSON: %s", b)
	}
	return resp, m
}

func TestRequire_ValidTokenPutsClaimsInContext(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	toks := w.token(t, "openid email notes.read")
	resp, m := get(t, w.api.URL+"/notes", "bearer "+toks.Access)
	c := toks.Claims
	if resp.StatusCode != 200 || m["Subject"] != c.Subject || m["ClientID"] != w.app.Client.ID || m["Email"] != c.Email ||
		c.Email == "" || m["GrantID"] != c.GrantID || m["ViaGateway"] != false {
		t.Errorf("status %d claims %v, want those of %+v", resp.StatusCode, m, c)
	}
	if w.jwksHits.Load() != 1 {
		t.Errorf("JWKS fetched %d times, want 1", w.jwksHits.Load())
	}
}

func TestRequire_Errors(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	good := w.token(t, "openid notes.read").Access
	// A token of another app on the same server, and one of another AuthGPTs server.
	other := w.env.NewApp(t, handlertest.UniqueEmail(t, "dev2"), store.ClientKindGPT, "https://chatgpt.com/aip/g-other/oauth/callback")
	otherApp := w.env.UserToken(t, other, handlertest.UniqueEmail(t, "bob"), "openid").Access
	env2 := handlertest.New(t)
	app2 := env2.NewApp(t, handlertest.UniqueEmail(t, "dev3"), store.ClientKindGPT, "https://chatgpt.com/aip/g-x/oauth/callback")
	foreign := env2.UserToken(t, app2, handlertest.UniqueEmail(t, "cid"), "openid").Access
	// Hand-made with the server's own key: the token endpoint never issues another iss.
	now := time.Now()
	wrongIssuer, err := w.env.Instance.Keys.KeySet().SignAccessToken(oauth.AccessClaims{Issuer: "https://evil.example", Subject: "u",
		ClientID: w.app.Client.ID, JTI: "j", Scope: "notes.read", Audience: []string{w.audience}, IssuedAt: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	meta := `resource_metadata="` + w.env.BaseURL + `/.well-known/oauth-protected-resource/gw/` + w.app.App.Slug + `"`
	tests := []struct {
		name, path, auth, query string
		status                  int
		code                    string
	}{
		{"no token", "/notes", "", "", 401, ""},
		{"token in the query", "/notes", "", "?access_token=" + good, 400, "invalid_request"},
		{"basic scheme", "/notes", "Basic dXNlcjpwYXNz", "", 401, "invalid_token"},
		{"garbage", "/notes", "Bearer abc.def.ghi", "", 401, "invalid_token"},
		{"another issuer", "/notes", "Bearer " + wrongIssuer, "", 401, "invalid_token"},
		{"another app's token", "/notes", "Bearer " + otherApp, "", 401, "invalid_token"},
		{"another server's token", "/notes", "Bearer " + foreign, "", 401, "invalid_token"},
		{"missing scope", "/admin", "Bearer " + good, "", 403, "insufficient_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := get(t, w.api.URL+tc.path+tc.query, tc.auth)
			wa := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != tc.status || !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, meta) {
				t.Fatalf("status %d WWW-Authenticate %q body %v", resp.StatusCode, wa, m)
			}
			if tc.code == "" {
				if strings.Contains(wa, "error=") || m["error"] != "unauthorized" {
					t.Errorf("no token: WWW-Authenticate %q body %v", wa, m)
				}
				return
			}
			if m["error"] != tc.code || !strings.Contains(wa, `error="`+tc.code+`"`) {
				t.Errorf("body %v WWW-Authenticate %q, want %s", m, wa, tc.code)
			}
			if tc.code == "insufficient_scope" && (!strings.Contains(wa, `scope="notes.admin"`) || m["scope"] != "notes.admin") {
				t.Errorf("insufficient_scope must name the scope: %q %v", wa, m)
			}
		})
	}
}

// TestVerify_ExpiredToken: a real token checked by an API whose clock is past its
// expiry (plus the leeway).
func TestVerify_ExpiredToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *resource.Config) { c.Now = func() time.Time { return time.Now().Add(2 * time.Hour) } })
	tok := w.token(t, "openid notes.read")
	if _, err := w.verifier.Verify(context.Background(), tok.Access); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("Verify of an expired token = %v, want an expiry error", err)
	}
}

func TestVerifier_RefetchesJWKSOnUnknownKidRateLimited(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *resource.Config) { c.MinRefreshInterval = time.Hour })
	if resp, _ := get(t, w.api.URL+"/notes", "Bearer "+w.token(t, "openid notes.read").Access); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if w.jwksHits.Load() != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", w.jwksHits.Load())
	}
	// Tokens with unknown kids (another server's) do not make the verifier hammer the
	// server.
	env2 := handlertest.New(t)
	app2 := env2.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindService)
	for range 20 {
		get(t, w.api.URL+"/notes", "Bearer "+env2.ServiceToken(t, app2, "").Access)
	}
	if w.jwksHits.Load() != 1 {
		t.Errorf("JWKS fetched %d times within the refresh interval, want 1", w.jwksHits.Load())
	}
}

// TestVerifier_KeyRotationPicksUpTheNewKey: `authgpts keys rotate` on the server; the
// API fetches the JWKS again for the first token of the new key and still accepts
// tokens of the retired key, which stays published until they expire.
func TestVerifier_KeyRotationPicksUpTheNewKey(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(c *resource.Config) { c.MinRefreshInterval = time.Nanosecond })
	old := w.token(t, "openid notes.read").Access
	if resp, _ := get(t, w.api.URL+"/notes", "Bearer "+old); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	kid, err := w.env.Instance.Keys.Rotate(context.Background(), oauth.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	fresh := w.token(t, "openid notes.read").Access
	if oauth.TokenKeyID(fresh) != kid || oauth.TokenKeyID(old) == kid {
		t.Fatalf("kids: old %q, new %q, rotated in %q", oauth.TokenKeyID(old), oauth.TokenKeyID(fresh), kid)
	}
	if resp, m := get(t, w.api.URL+"/notes", "Bearer "+fresh); resp.StatusCode != 200 {
		t.Errorf("token signed with the new key: %d %v", resp.StatusCode, m)
	}
	if resp, _ := get(t, w.api.URL+"/notes", "Bearer "+old); resp.StatusCode != 200 {
		t.Errorf("token of the retired (still published) key: %d", resp.StatusCode)
	}
	if w.jwksHits.Load() != 2 {
		t.Errorf("JWKS fetched %d times, want 2", w.jwksHits.Load())
	}
}

// TestRequireGateway_VerifiesTheAssertion: a call through the real gateway reaches the
// API with an assertion RequireGateway accepts; anything else is refused.
func TestRequireGateway_VerifiesTheAssertion(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	toks := w.token(t, "openid email notes.read")
	resp, m := get(t, w.env.BaseURL+"/gw/"+w.app.App.Slug+"/via-gateway", "Bearer "+toks.Access)
	if resp.StatusCode != 200 || m["Subject"] != toks.Claims.Subject || m["ViaGateway"] != true ||
		m["ClientID"] != w.app.Client.ID || m["Email"] != toks.Claims.Email {
		t.Fatalf("through the gateway: %d %v", resp.StatusCode, m)
	}
	// Without the notes.read scope the gateway passes the call (no scope rule) and the
	// API refuses it.
	if resp, m := get(t, w.env.BaseURL+"/gw/"+w.app.App.Slug+"/via-gateway", "Bearer "+w.token(t, "openid").Access); resp.StatusCode != 403 {
		t.Errorf("assertion without the scope: %d %v", resp.StatusCode, m)
	}
	now := time.Now()
	otherUpstream, err := w.env.Instance.Keys.KeySet().SignGatewayAssertion(oauth.GatewayAssertion{Issuer: w.env.BaseURL,
		Audience: "https://other.example.com", Subject: "u", ClientID: w.app.Client.ID, Scope: "notes.read", JTI: "j",
		IssuedAt: now, Expiry: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	for name, hdr := range map[string]string{
		"none (a direct call)": "",
		"another upstream":     otherUpstream,
		"an access token":      toks.Access,
	} {
		resp, m := get(t, w.upstream()+"/via-gateway", "", resource.AssertionHeader, hdr)
		if resp.StatusCode != 401 {
			t.Errorf("%s: %d %v, want 401", name, resp.StatusCode, m)
		}
	}
	if gateway.HeaderAssertion != resource.AssertionHeader {
		t.Errorf("gateway sets %q, middleware reads %q", gateway.HeaderAssertion, resource.AssertionHeader)
	}
}

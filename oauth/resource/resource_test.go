package resource_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/resource"
)

// authServer stands in for AuthGPTs' discovery and JWKS endpoints, with keys the test
// can rotate, counting JWKS fetches.
type authServer struct {
	*httptest.Server
	mu        sync.Mutex
	ks        *oauth.KeySet
	jwksHits  atomic.Int64
	issuerURL string
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	a := &authServer{ks: oauth.NewKeySet(newKey(t))}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": a.URL, "jwks_uri": a.URL + "/.well-known/jwks.json"})
		case "/.well-known/jwks.json":
			a.jwksHits.Add(1)
			a.mu.Lock()
			_, _ = w.Write(a.ks.JWKS())
			a.mu.Unlock()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func newKey(t testing.TB) oauth.SigningKey {
	k, err := oauth.GenerateKey(oauth.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (a *authServer) keys() *oauth.KeySet {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ks
}

// rotate makes a new key active, keeping the old one published.
func (a *authServer) rotate(t *testing.T) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ks = oauth.NewKeySet(newKey(t), a.ks.Active())
}

func (a *authServer) token(t *testing.T, mod func(*oauth.AccessClaims)) string {
	t.Helper()
	now := time.Now()
	c := oauth.AccessClaims{Issuer: a.URL, Subject: "user-1", ClientID: "agpt_client", Scope: "openid email notes.read",
		JTI: "j1", GrantID: "g1", Audience: []string{a.URL + "/gw/notes"}, IssuedAt: now, Expiry: now.Add(time.Hour),
		Email: "ann@example.com"}
	if mod != nil {
		mod(&c)
	}
	tok, err := a.keys().SignAccessToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// api is the developer's API using the middleware, as in the README example.
func api(t *testing.T, a *authServer, cfg func(*resource.Config)) (*resource.Verifier, *httptest.Server) {
	t.Helper()
	c := resource.Config{Issuer: a.URL, Audience: []string{a.URL + "/gw/notes"},
		ResourceMetadata: a.URL + "/.well-known/oauth-protected-resource/gw/notes"}
	if cfg != nil {
		cfg(&c)
	}
	v, err := resource.New(c)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := resource.FromContext(r.Context())
		if !ok {
			t.Error("no claims in the context")
		}
		_ = json.NewEncoder(w).Encode(c)
	})
	mux.Handle("/notes", v.Require("notes.read")(whoami))
	mux.Handle("/admin", v.Require("notes.admin")(whoami))
	mux.Handle("/via-gateway", v.RequireGateway("https://api.example.com/v1", "notes.read")(whoami))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return v, srv
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
	a := newAuthServer(t)
	_, srv := api(t, a, nil)
	resp, m := get(t, srv.URL+"/notes", "bearer "+a.token(t, nil))
	if resp.StatusCode != 200 || m["Subject"] != "user-1" || m["ClientID"] != "agpt_client" || m["Email"] != "ann@example.com" || m["GrantID"] != "g1" {
		t.Errorf("status %d claims %v", resp.StatusCode, m)
	}
}

func TestRequire_Errors(t *testing.T) {
	a := newAuthServer(t)
	_, srv := api(t, a, nil)
	other, err := oauth.GenerateKey(oauth.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	foreign, _ := oauth.NewKeySet(other).SignAccessToken(oauth.AccessClaims{Issuer: a.URL, Subject: "u", ClientID: "c", JTI: "j",
		Audience: []string{a.URL + "/gw/notes"}, IssuedAt: now, Expiry: now.Add(time.Hour), Scope: "notes.read"})
	meta := `resource_metadata="` + a.URL + `/.well-known/oauth-protected-resource/gw/notes"`
	tests := []struct {
		name, path, auth, query string
		status                  int
		code                    string
	}{
		{"no token", "/notes", "", "", 401, ""},
		{"token in the query", "/notes", "", "?access_token=" + a.token(t, nil), 400, "invalid_request"},
		{"basic scheme", "/notes", "Basic dXNlcjpwYXNz", "", 401, "invalid_token"},
		{"garbage", "/notes", "Bearer abc.def.ghi", "", 401, "invalid_token"},
		{"expired", "/notes", "Bearer " + a.token(t, func(c *oauth.AccessClaims) { c.IssuedAt, c.Expiry = now.Add(-2*time.Hour), now.Add(-time.Hour) }), "", 401, "invalid_token"},
		{"another issuer", "/notes", "Bearer " + a.token(t, func(c *oauth.AccessClaims) { c.Issuer = "https://evil.example" }), "", 401, "invalid_token"},
		{"another audience", "/notes", "Bearer " + a.token(t, func(c *oauth.AccessClaims) { c.Audience = []string{a.URL + "/gw/other"} }), "", 401, "invalid_token"},
		{"unknown signing key", "/notes", "Bearer " + foreign, "", 401, "invalid_token"},
		{"missing scope", "/admin", "Bearer " + a.token(t, nil), "", 403, "insufficient_scope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, m := get(t, srv.URL+tc.path+tc.query, tc.auth)
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

func TestVerifier_RefetchesJWKSOnUnknownKidRateLimited(t *testing.T) {
	a := newAuthServer(t)
	_, srv := api(t, a, func(c *resource.Config) { c.MinRefreshInterval = time.Hour })
	if resp, _ := get(t, srv.URL+"/notes", "Bearer "+a.token(t, nil)); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if a.jwksHits.Load() != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", a.jwksHits.Load())
	}
	// Tokens with unknown kids do not make the verifier hammer the server.
	other, _ := oauth.GenerateKey(oauth.AlgES256)
	now := time.Now()
	for range 20 {
		tok, _ := oauth.NewKeySet(other).SignAccessToken(oauth.AccessClaims{Issuer: a.URL, Subject: "u", ClientID: "c", JTI: "j",
			Audience: []string{a.URL + "/gw/notes"}, IssuedAt: now, Expiry: now.Add(time.Hour)})
		get(t, srv.URL+"/notes", "Bearer "+tok)
	}
	if a.jwksHits.Load() != 1 {
		t.Errorf("JWKS fetched %d times within the refresh interval, want 1", a.jwksHits.Load())
	}
}

func TestVerifier_KeyRotationPicksUpTheNewKey(t *testing.T) {
	a := newAuthServer(t)
	_, srv := api(t, a, func(c *resource.Config) { c.MinRefreshInterval = time.Nanosecond })
	old := a.token(t, nil)
	if resp, _ := get(t, srv.URL+"/notes", "Bearer "+old); resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	a.rotate(t)
	if resp, m := get(t, srv.URL+"/notes", "Bearer "+a.token(t, nil)); resp.StatusCode != 200 {
		t.Errorf("token signed with the new key: %d %v", resp.StatusCode, m)
	}
	if resp, _ := get(t, srv.URL+"/notes", "Bearer "+old); resp.StatusCode != 200 {
		t.Errorf("token of the previous (still published) key: %d", resp.StatusCode)
	}
	if a.jwksHits.Load() != 2 {
		t.Errorf("JWKS fetched %d times, want 2", a.jwksHits.Load())
	}
}

func TestRequireGateway_VerifiesTheAssertion(t *testing.T) {
	a := newAuthServer(t)
	_, srv := api(t, a, nil)
	now := time.Now()
	sign := func(aud string, scope string) string {
		s, err := a.keys().SignGatewayAssertion(oauth.GatewayAssertion{Issuer: a.URL, Audience: aud, Subject: "user-1",
			ClientID: "agpt_client", Scope: scope, JTI: "j", IssuedAt: now, Expiry: now.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	resp, m := get(t, srv.URL+"/via-gateway", "", resource.AssertionHeader, sign("https://api.example.com/v1", "notes.read"))
	if resp.StatusCode != 200 || m["Subject"] != "user-1" || m["ViaGateway"] != true {
		t.Errorf("valid assertion: %d %v", resp.StatusCode, m)
	}
	for name, hdr := range map[string]string{
		"none":              "",
		"another upstream":  sign("https://other.example.com", "notes.read"),
		"an access token":   a.token(t, nil),
		"missing the scope": sign("https://api.example.com/v1", "openid"),
	} {
		resp, m := get(t, srv.URL+"/via-gateway", "", resource.AssertionHeader, hdr)
		if resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Errorf("%s: %d %v", name, resp.StatusCode, m)
		}
	}
}

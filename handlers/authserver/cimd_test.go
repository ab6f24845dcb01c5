package authserver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/safefetch"
)

// docHost is a local HTTPS server publishing client metadata documents, the only
// address in the server's SSRF allow-list.
type docHost struct {
	*httptest.Server
	mu      sync.Mutex
	docs    map[string]string // path -> body
	headers map[string]string // path -> Cache-Control
	hits    map[string]int
}

func (d *docHost) publish(path, body, cacheControl string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.docs[path], d.headers[path] = body, cacheControl
	return d.URL + path
}

func (d *docHost) hitCount(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.hits[path]
}

// victim is a local HTTPS server that must never be reached: not allow-listed.
type victim struct {
	*httptest.Server
	hits atomic.Int64
}

type cimdWorld struct {
	*mcpWorld
	docs   *docHost
	victim *victim
}

func newCIMDWorld(t *testing.T) *cimdWorld {
	t.Helper()
	d := &docHost{docs: map[string]string{}, headers: map[string]string{}, hits: map[string]int{}}
	d.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.hits[r.URL.Path]++
		body, ok := d.docs[r.URL.Path]
		cc := d.headers[r.URL.Path]
		d.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/redirect") {
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
			return
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(d.Close)
	v := &victim{}
	v.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.hits.Add(1)
		_, _ = w.Write([]byte(`{"secret":"internal"}`))
	}))
	t.Cleanup(v.Close)
	pool := x509.NewCertPool()
	pool.AddCert(d.Certificate())
	pool.AddCert(v.Certificate())
	fetcher := safefetch.New(safefetch.Options{AllowAddrs: []string{d.Listener.Addr().String()}, RootCAs: pool})
	env := handlertest.New(t, func(deps *handlers.Config) { deps.Fetcher = fetcher })
	w := &mcpWorld{env: env, app: env.NewMCPApp(t, handlertest.UniqueEmail(t, "dev"), "")}
	return &cimdWorld{mcpWorld: w, docs: d, victim: v}
}

// document is a metadata document for docURL.
func document(docURL string, extra map[string]any) string {
	m := map[string]any{"client_id": docURL, "client_name": "Claude Code",
		"redirect_uris": []string{"http://127.0.0.1/callback", "http://localhost/callback"}, "token_endpoint_auth_method": "none"}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func (w *cimdWorld) query(clientID, redirectURI, challenge string) url.Values {
	q := w.mcpWorld.query(w.resource("/mcp"), challenge, "client_id", clientID, "redirect_uri", redirectURI)
	return q
}

func TestCIMD_DocumentClientJourneyAndCaching(t *testing.T) {
	t.Parallel()
	w := newCIMDWorld(t)
	docURL := w.docs.URL + "/claude-code.json"
	w.docs.publish("/claude-code.json", document(docURL, nil), "max-age=60")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	verifier, challenge := pkcePair()
	redirect := "http://127.0.0.1:53682/callback" // RFC 8252 §7.3: any loopback port

	q := w.query(docURL, redirect, challenge)
	resp, page := w.get(t, user, q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize = %d, want the consent page; %.300s", resp.StatusCode, page)
	}
	docHostPort := strings.TrimPrefix(w.docs.URL, "https://")
	for _, want := range []string{"Claude Code", `data-origin="metadata_document"`, docHostPort, `data-testid="localhost-warning"`, "127.0.0.1:53682"} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(page, `data-origin="registration"`) {
		t.Error("a metadata-document client is shown as an anonymous registration")
	}
	cb := callback(t, (&world{env: w.env}).consent(t, user, page, "allow", nil), redirect)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Get("code")}, "redirect_uri": {redirect},
		"code_verifier": {verifier}, "client_id": {docURL}, "resource": {w.resource("/mcp")}}
	tok := (&world{env: w.env}).post(t, oauth.PathToken, form, "", "")
	wantOK(t, tok)
	if aud := claimsOf(t, tok.str("access_token"))["aud"]; !audIs(aud, w.resource("/mcp")) {
		t.Errorf("aud = %v", aud)
	}

	var row struct {
		AppID   *string    `db:"app_id"`
		Origin  string     `db:"origin"`
		Expires *time.Time `db:"metadata_expires_at"`
		Method  string     `db:"token_endpoint_auth_method"`
	}
	if err := w.env.Store.DB().Get(&row, `SELECT app_id::text AS app_id, origin, metadata_expires_at, token_endpoint_auth_method FROM clients WHERE id = $1`, docURL); err != nil {
		t.Fatal(err)
	}
	now := w.env.Clock.Now()
	if row.AppID != nil || row.Origin != "metadata_document" || row.Method != "none" || row.Expires == nil ||
		row.Expires.Before(now.Add(4*time.Minute)) || row.Expires.After(now.Add(6*time.Minute)) {
		t.Errorf("row = %+v; want no app, origin metadata_document, expiry at the 5-minute floor (max-age=60 is below it)", row)
	}
	if n := w.docs.hitCount("/claude-code.json"); n != 1 {
		t.Fatalf("document fetched %d times, want 1", n)
	}

	// Cached: the next authorization does not fetch.
	resp, _ = w.get(t, user, w.query(docURL, "http://localhost:1234/callback", challenge))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remembered consent = %d, want 303", resp.StatusCode)
	}
	if n := w.docs.hitCount("/claude-code.json"); n != 1 {
		t.Errorf("document fetched %d times within its lifetime, want 1", n)
	}
	// Expired: fetched again, and the new lifetime is capped at the 24-hour ceiling.
	w.docs.publish("/claude-code.json", document(docURL, map[string]any{"client_name": "Claude Code 2"}), "max-age=604800")
	w.env.Clock.Advance(6 * time.Minute)
	resp, _ = w.get(t, user, w.query(docURL, redirect, challenge))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after expiry = %d, want 303", resp.StatusCode)
	}
	if n := w.docs.hitCount("/claude-code.json"); n != 2 {
		t.Errorf("document fetched %d times after expiry, want 2", n)
	}
	var name string
	var expires time.Time
	if err := w.env.Store.DB().QueryRow(`SELECT name, metadata_expires_at FROM clients WHERE id = $1`, docURL).Scan(&name, &expires); err != nil {
		t.Fatal(err)
	}
	if name != "Claude Code 2" || expires.After(w.env.Clock.Now().Add(24*time.Hour+time.Minute)) {
		t.Errorf("after refetch: name %q, expires %v; want the new name and at most 24 h", name, expires)
	}
}

func TestCIMD_ClientIDMustEqualTheDocumentURL(t *testing.T) {
	t.Parallel()
	w := newCIMDWorld(t)
	docURL := w.docs.publish("/c.json", document(w.docs.URL+"/other.json", nil), "")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, challenge := pkcePair()
	resp, body := w.get(t, user, w.query(docURL, "http://127.0.0.1:9/callback", challenge))
	wantErrorPage(t, resp, body)
	if n := countRows(t, w.env, `SELECT count(*) FROM clients WHERE id = $1`, docURL); n != 0 {
		t.Errorf("an invalid document was stored")
	}
}

func TestCIMD_RedirectURINotInDocumentIsAnErrorPage(t *testing.T) {
	t.Parallel()
	w := newCIMDWorld(t)
	docURL := w.docs.URL + "/c.json"
	w.docs.publish("/c.json", document(docURL, map[string]any{"redirect_uris": []string{"https://app.example/cb"}}), "")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, challenge := pkcePair()
	for _, redirect := range []string{"https://evil.example/cb", "https://app.example/cb/x", "http://127.0.0.1:9/callback"} {
		resp, body := w.get(t, user, w.query(docURL, redirect, challenge))
		wantErrorPage(t, resp, body)
	}
}

func TestCIMD_SSRFTargetsAreRefusedWithoutAFetchReachingThem(t *testing.T) {
	t.Parallel()
	w := newCIMDWorld(t)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, challenge := pkcePair()
	port := w.victim.URL[strings.LastIndex(w.victim.URL, ":")+1:]
	targets := map[string]string{
		"loopback literal":           "https://127.0.0.1:" + port + "/client.json",
		"other loopback address":     "https://127.0.0.2:" + port + "/client.json",
		"IPv6 loopback":              "https://[::1]:" + port + "/client.json",
		"IPv4-mapped loopback":       "https://[::ffff:127.0.0.1]:" + port + "/client.json",
		"private 10/8":               "https://10.0.0.1/client.json",
		"cloud metadata":             "https://169.254.169.254/latest/meta-data/client.json",
		"name resolving to loopback": "https://localhost:" + port + "/client.json",
		"redirect to a private addr": w.docs.URL + "/redirect?to=" + url.QueryEscape(w.victim.URL+"/client.json"),
		"redirect to metadata":       w.docs.URL + "/redirect?to=" + url.QueryEscape("https://169.254.169.254/latest/meta-data/"),
	}
	for name, clientID := range targets {
		t.Run(name, func(t *testing.T) {
			resp, body := w.get(t, user, w.query(clientID, "http://127.0.0.1:9/callback", challenge))
			wantErrorPage(t, resp, body)
		})
	}
	if n := w.victim.hits.Load(); n != 0 {
		t.Errorf("the private server was reached %d times", n)
	}
	if n := countRows(t, w.env, `SELECT count(*) FROM clients WHERE origin = 'metadata_document'`); n != 0 {
		t.Errorf("%d document clients stored", n)
	}
	// A plain-http client_id is no metadata document: an unknown client, never fetched.
	resp, body := w.get(t, user, w.query("http://"+strings.TrimPrefix(w.victim.URL, "https://")+"/c.json", "http://127.0.0.1:9/callback", challenge))
	wantErrorPage(t, resp, body)
	if n := w.victim.hits.Load(); n != 0 {
		t.Errorf("the private server was reached %d times", n)
	}
}

func TestCIMD_PrivateKeyJWTClientAuthentication(t *testing.T) {
	t.Parallel()
	w := newCIMDWorld(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	jwksURL := w.docs.publish("/oauth/jwks.json", string(jwks), "max-age=300")
	docURL := w.docs.URL + "/oauth/chatgpt.json"
	w.docs.publish("/oauth/chatgpt.json", document(docURL, map[string]any{"client_name": "ChatGPT",
		"redirect_uris": []string{"https://chatgpt.com/connector/oauth/abc123"}, "token_endpoint_auth_method": "private_key_jwt",
		"jwks_uri": jwksURL, "token_endpoint_auth_signing_alg": "ES256"}), "")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	tokenURL := w.env.BaseURL + oauth.PathToken

	sign := func(k *ecdsa.PrivateKey, claims jwt.Claims) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := func() jwt.Claims {
		now := time.Now()
		return jwt.Claims{Issuer: docURL, Subject: docURL, Audience: jwt.Audience{tokenURL}, ID: randomString(16),
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	}
	redeem := func(assertion string, withAssertion bool) tokenResult {
		verifier, challenge := pkcePair()
		q := w.query(docURL, "https://chatgpt.com/connector/oauth/abc123", challenge)
		code := w.code2(t, user, q)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {q.Get("redirect_uri")},
			"code_verifier": {verifier}, "client_id": {docURL}}
		if withAssertion {
			form.Set("client_assertion_type", oauth.ClientAssertionType)
			form.Set("client_assertion", assertion)
		}
		return (&world{env: w.env}).post(t, oauth.PathToken, form, "", "")
	}

	first := sign(key, good())
	wantOK(t, redeem(first, true))
	wantError(t, redeem(first, true), http.StatusUnauthorized, "invalid_client") // jti replay
	wantError(t, redeem("", false), http.StatusUnauthorized, "invalid_client")   // no assertion
	wantError(t, redeem(sign(other, good()), true), http.StatusUnauthorized, "invalid_client")
	c := good()
	c.Audience = jwt.Audience{"https://elsewhere.example/token"}
	wantError(t, redeem(sign(key, c), true), http.StatusUnauthorized, "invalid_client")
	c = good()
	c.Subject = "someone-else"
	wantError(t, redeem(sign(key, c), true), http.StatusUnauthorized, "invalid_client")
	c = good()
	c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	wantError(t, redeem(sign(key, c), true), http.StatusUnauthorized, "invalid_client")
	// The issuer as aud is accepted too (RFC 7523 §3 lets the AS choose).
	c = good()
	c.Audience = jwt.Audience{w.env.BaseURL}
	wantOK(t, redeem(sign(key, c), true))

	if n := countRows(t, w.env, `SELECT count(*) FROM client_assertion_jtis WHERE client_id = $1`, docURL); n < 2 {
		t.Errorf("jtis remembered = %d, want at least 2", n)
	}
	if strings.Contains(w.env.Logs.String(), first) {
		t.Error("a client assertion was logged")
	}
}

// code2 is mcpWorld.code for any redirect URI.
func (w *mcpWorld) code2(t *testing.T, c *http.Client, q url.Values) string {
	t.Helper()
	resp, body := w.get(t, c, q)
	if resp.StatusCode == http.StatusOK {
		resp = (&world{env: w.env}).consent(t, c, body, "allow", nil)
	}
	cb := callback(t, resp, q.Get("redirect_uri"))
	if cb.Get("error") != "" {
		t.Fatalf("authorization error %q: %s", cb.Get("error"), cb.Get("error_description"))
	}
	return cb.Get("code")
}

func TestCIMD_FailedDocumentIsNotRefetchedForAMinute(t *testing.T) {
	t.Parallel()
	w := newCIMDWorld(t)
	docURL := w.docs.publish("/broken.json", document(w.docs.URL+"/someone-else.json", nil), "")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, challenge := pkcePair()
	hits := func() int { return w.docs.hitCount("/broken.json") }
	for range 3 {
		resp, body := w.get(t, user, w.query(docURL, "http://127.0.0.1:9/callback", challenge))
		wantErrorPage(t, resp, body)
	}
	if n := hits(); n != 1 {
		t.Fatalf("document fetched %d times for 3 requests within a minute, want 1", n)
	}
	w.env.Clock.Advance(time.Minute + time.Second) // the failure is remembered for a minute
	resp, body := w.get(t, user, w.query(docURL, "http://127.0.0.1:9/callback", challenge))
	wantErrorPage(t, resp, body)
	if n := hits(); n != 2 {
		t.Errorf("document fetched %d times after the failure expired, want 2", n)
	}
}

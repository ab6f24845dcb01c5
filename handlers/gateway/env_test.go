package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/signingkeys"
)

// env is a full server with a started gateway on a fresh database: the real OAuth
// server (handlertest builds its key manager and LISTEN connection as serve does) mints
// every token the tests send, and Admin is an admin of that server.
type env struct {
	*handlertest.Env
	GW    *gateway.Gateway
	Admin string // the admin's email (handlers.Config.AdminEmails)

	adminOnce sync.Once
	admin     *http.Client

	mu       sync.Mutex
	sessions map[string]*http.Client // grant ID → the browser session of the user who consented
}

// userSession returns the signed-in browser client of the user behind a grant.
func (e *env) userSession(t testing.TB, grantID string) *http.Client {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.sessions[grantID]
	if c == nil {
		t.Fatalf("no session for grant %s", grantID)
	}
	return c
}

// adminClient signs the admin in once (codes are throttled per email) and returns the
// client holding that session.
func (e *env) adminClient(t testing.TB) *http.Client {
	t.Helper()
	e.adminOnce.Do(func() { e.admin = e.SignIn(t, e.Admin) })
	if e.admin == nil {
		t.Fatal("the admin could not sign in")
	}
	return e.admin
}

// newEnv starts the server with a gateway; cfg adjusts the gateway's configuration.
func newEnv(t testing.TB, cfg ...func(*gateway.Config)) *env {
	t.Helper()
	e := &env{Admin: handlertest.UniqueEmail(t, "admin")}
	e.Env = handlertest.NewWithGateway(t, func(c *gateway.Config) {
		for _, f := range cfg {
			f(c)
		}
	}, func(d *handlers.Config) { d.AdminEmails = []string{e.Admin} })
	e.GW = e.Gateway
	return e
}

// secondInstance starts another router and gateway on the same database, as a second
// `authgpts serve` behind the load balancer would run; keys is its signing-key manager
// (nil: share the first instance's). It returns the instance's base URL and gateway.
func (e *env) secondInstance(t testing.TB, keys *signingkeys.Keys) (string, *gateway.Gateway) {
	t.Helper()
	cfg := e.Config
	cfg.SigningKeys = keys
	srv, hs := handlertest.StartInstance(t, cfg)
	return hs.URL, srv.Gateway
}

// upstream is a real HTTP server standing in for the developer's API. It answers with
// what it received, as JSON, except on a few special paths.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []seen
	sse      chan string // /sse sends each string as an event until the channel closes
}

type seen struct {
	Method   string      `json:"method"`
	Path     string      `json:"path"`
	RawPath  string      `json:"raw_path"`
	RawQuery string      `json:"raw_query"`
	Header   http.Header `json:"header"`
	Body     string      `json:"body"`
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{sse: make(chan string)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery, Header: r.Header, Body: string(body)}
		u.mu.Lock()
		u.requests = append(u.requests, s)
		u.mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/fail"):
			http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
			return
		case strings.HasSuffix(r.URL.Path, "/missing"):
			http.Error(w, `{"error":"nope"}`, http.StatusNotFound)
			return
		case strings.HasSuffix(r.URL.Path, "/sse"):
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			for ev := range u.sse {
				io.WriteString(w, "data: "+ev+"\n\n")
				w.(http.Flusher).Flush()
			}
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "agpt_session", Value: "evil"})
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.requests)
}

// fixture is an app behind the gateway with one client.
type fixture struct {
	handlertest.AppFixture
	Upstream *upstream
}

// newApp creates an app whose upstream is a fresh test server (base path /v1).
func (e *env) newApp(t testing.TB, kind string, settings ...string) fixture {
	t.Helper()
	up := newUpstream(t)
	f := e.NewApp(t, handlertest.UniqueEmail(t, "dev"), kind, "https://chatgpt.com/aip/g-test/oauth/callback")
	e.exec(t, `UPDATE apps SET upstream_url = $2 WHERE id = $1`, f.App.ID, up.URL+"/v1")
	for _, s := range settings {
		e.exec(t, `UPDATE apps SET `+s+` WHERE id = $1`, f.App.ID)
	}
	app, err := e.Store.AppByID(context.Background(), f.App.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.App = app
	return fixture{AppFixture: f, Upstream: up}
}

func (e *env) exec(t testing.TB, query string, args ...any) {
	t.Helper()
	if _, err := e.Store.DB().Exec(query, args...); err != nil {
		t.Fatalf("exec %q: %v", query, err)
	}
}

// userToken signs a new end user in and runs the authorization-code flow of the app's
// client through the real /oauth/authorize, consent and /oauth/token endpoints. It
// returns the access token, the user and the grant the consent created.
func (e *env) userToken(t testing.TB, f fixture, scope string) (token string, user store.User, grantID string) {
	t.Helper()
	toks, user := e.userTokens(t, f, scope)
	return toks.Access, user, toks.Claims.GrantID
}

// userTokens is userToken returning everything the token endpoint answered.
func (e *env) userTokens(t testing.TB, f fixture, scope string) (handlertest.Tokens, store.User) {
	t.Helper()
	email := handlertest.UniqueEmail(t, "user")
	session := e.SignIn(t, email)
	toks := e.UserTokenFor(t, session, f.AppFixture, scope)
	e.mu.Lock()
	if e.sessions == nil {
		e.sessions = map[string]*http.Client{}
	}
	e.sessions[toks.Claims.GrantID] = session
	e.mu.Unlock()
	user, err := e.Store.EnsureUser(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	if toks.Claims.Subject != user.ID || toks.Claims.GrantID == "" || toks.Scope != scope {
		t.Fatalf("token for %s: claims %+v, scope %q; want the user's grant with scope %q", email, toks.Claims, toks.Scope, scope)
	}
	return toks, user
}

// serviceToken returns a client_credentials token of the app's (service) client from
// the real token endpoint.
func (e *env) serviceToken(t testing.TB, f fixture, scope string) string {
	t.Helper()
	return e.ServiceToken(t, f.AppFixture, scope).Access
}

// addScopes adds custom scopes to the app, as the portal does.
func (e *env) addScopes(t testing.TB, f fixture, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := e.Store.CreateScope(context.Background(), f.Owner.ID, f.App.ID, store.Scope{Name: n, Description: "Test scope " + n}, time.Now()); err != nil {
			t.Fatalf("add scope %s: %v", n, err)
		}
	}
}

// sign signs a hand-made access token with the server's own active key, for the tests
// that need a token the token endpoint never issues (expired, not yet valid, another
// issuer or audience, an unknown grant). Every other token comes from the endpoint.
func (e *env) sign(t testing.TB, c oauth.AccessClaims) string {
	t.Helper()
	now := e.Clock.Now()
	if c.Issuer == "" {
		c.Issuer = e.BaseURL
	}
	if c.IssuedAt.IsZero() {
		c.IssuedAt = now
	}
	if c.Expiry.IsZero() {
		c.Expiry = now.Add(3 * time.Hour)
	}
	if c.JTI == "" {
		c.JTI = randomID()
	}
	tok, err := e.Instance.Keys.KeySet().SignAccessToken(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// call makes one request to the gateway with an optional bearer token.
func (e *env) call(t testing.TB, method, path, token string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	return do(t, e.BaseURL, method, path, token, body, hdr...)
}

func do(t testing.TB, base, method, path, token string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	return resp, b
}

// jsonBody decodes a JSON response body into a map.
func jsonBody(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not JSON: %v: %.300s", err, b)
	}
	return m
}

// flushAndCount writes buffered usage and returns the app's stored events.
func (e *env) events(t testing.TB, appID string) []store.UsageEvent {
	t.Helper()
	if err := e.GW.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev, err := e.Store.UsageEventsByApp(context.Background(), appID)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

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
)

// testKeys is the one place tests get the server's signing keys from.
var testKeys = sync.OnceValue(func() gateway.KeySource {
	k, err := oauth.GenerateKey(oauth.AlgES256)
	if err != nil {
		panic(err)
	}
	return staticKeys{oauth.NewKeySet(k)}
})

type staticKeys struct{ ks *oauth.KeySet }

func (s staticKeys) KeySet() *oauth.KeySet { return s.ks }

// env is a full server with a started gateway on a fresh database.
type env struct {
	*handlertest.Env
	GW   *gateway.Gateway
	Keys gateway.KeySource
}

// newEnv starts the server with a gateway; cfg adjusts the gateway's configuration.
func newEnv(t testing.TB, cfg ...func(*gateway.Config)) *env {
	t.Helper()
	e := &env{Keys: testKeys()}
	e.Env = handlertest.New(t, func(d *handlers.Deps) {
		d.Gateway = newGateway(t, d, "", e.Keys, cfg...)
	})
	e.GW = e.Deps.Gateway
	waitCaching(t, e.GW)
	return e
}

// newGateway builds and starts a gateway for the server d describes, LISTENing on the
// test database (dsn, or the DSN handlertest opened when empty).
func newGateway(t testing.TB, d *handlers.Deps, dsn string, keys gateway.KeySource, cfg ...func(*gateway.Config)) *gateway.Gateway {
	t.Helper()
	if dsn == "" {
		dsn = dsnOf(t, d.Store)
	}
	c := gateway.Config{Store: d.Store, Keys: keys, BaseURL: d.BaseURL, DatabaseURL: dsn, Log: d.Log, Now: d.Now,
		RollupInterval: -1}
	for _, f := range cfg {
		f(&c)
	}
	gw := gateway.New(c)
	gw.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Close(ctx); err != nil {
			t.Errorf("gateway Close: %v", err)
		}
	})
	return gw
}

// dsnOf finds the URL of the store's database (handlertest builds Deps before it
// returns its DSN).
func dsnOf(t testing.TB, st *store.Store) string {
	t.Helper()
	var name string
	if err := st.DB().Get(&name, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	base := envDatabaseURL(t)
	i := strings.LastIndex(base, "/")
	j := strings.Index(base[i:], "?")
	if j < 0 {
		return base[:i+1] + name
	}
	return base[:i+1] + name + base[i+j:]
}

// waitCaching waits until the gateway's LISTEN is up (caches on).
func waitCaching(t testing.TB, gw *gateway.Gateway) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !gw.Stats().CacheEnabled {
		if time.Now().After(deadline) {
			t.Fatal("the gateway's revocation listener did not connect within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
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

// userToken signs in a new end user, records their consent (a grant) for the app's client
// and returns an access token for it with the given scopes.
func (e *env) userToken(t testing.TB, f fixture, scope string) (token string, user store.User, grantID string) {
	t.Helper()
	user, err := e.Store.EnsureUser(context.Background(), handlertest.UniqueEmail(t, "user"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.DB().Get(&grantID, `INSERT INTO grants (user_id, client_id, app_id, scopes) VALUES ($1, $2, $3, $4) RETURNING id`,
		user.ID, f.Client.ID, f.App.ID, "{"+strings.ReplaceAll(scope, " ", ",")+"}"); err != nil {
		t.Fatal(err)
	}
	return e.sign(t, oauth.AccessClaims{Subject: user.ID, GrantID: grantID, ClientID: f.Client.ID, Scope: scope,
		Email: user.Email, Audience: []string{e.BaseURL + "/gw/" + f.App.Slug}}), user, grantID
}

// serviceToken returns a client_credentials token of the app's (service) client.
func (e *env) serviceToken(t testing.TB, f fixture, scope string) string {
	t.Helper()
	return e.sign(t, oauth.AccessClaims{Subject: f.Client.ID, ClientID: f.Client.ID, Scope: scope,
		Audience: []string{e.BaseURL + "/gw/" + f.App.Slug}})
}

// sign fills the defaults of an access token and signs it with the server's keys.
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
	tok, err := e.Keys.KeySet().SignAccessToken(c)
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

// httptestServer serves another instance of the router built from d.
func httptestServer(t testing.TB, d handlers.Deps) string {
	t.Helper()
	srv := httptest.NewServer(handlers.NewRouter(d))
	t.Cleanup(srv.Close)
	return srv.URL
}

// publishedJWKS returns the server's public keys as published.
func publishedJWKS(t testing.TB, e *env) []byte {
	t.Helper()
	return e.Keys.KeySet().JWKS()
}

func newRouter(d handlers.Deps) http.Handler { return handlers.NewRouter(d) }

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

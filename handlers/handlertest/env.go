// Package handlertest starts the whole router on a real PostgreSQL database and a real
// in-process SMTP server, for handler and journey tests of every surface.
package handlertest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/notify"
	"github.com/authgpts/authgpts/store/signingkeys"
	"github.com/authgpts/authgpts/store/storetest"
	"github.com/authgpts/authgpts/views/email/mailer"
	"github.com/authgpts/authgpts/views/email/mailer/mailertest"
)

// Env is one running server with its database, mailbox, clock and captured logs.
type Env struct {
	Store   *store.Store
	DSN     string // the test database, for a second pool or a LISTEN connection
	Server  *httptest.Server
	BaseURL string
	SMTP    *mailertest.Server
	Clock   *Clock
	Logs    *SyncBuffer
	Deps    handlers.Deps
	Gateway *gateway.Gateway // set by NewWithGateway
	// Transport trusts the server's certificate (NewTLS); nil: the default transport.
	Transport http.RoundTripper
}

// Option adjusts the dependencies before the router is built.
type Option func(*handlers.Deps)

// New starts a server for the test on a fresh database. Mail goes over SMTP (go-mail) to
// an in-process server; logs are captured as JSON so tests can assert what they hold.
//
// The instance's LISTEN connection and signing keys are built before the options run, as
// serve builds them, so an option can use d.Keys and d.Listener.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	return start(t, nil, opts, false)
}

// NewTLS is New serving HTTPS on a loopback address with httptest's certificate: the
// base URL (the issuer) is https, as a production OpenID Connect provider's is. Tests
// use it as the upstream provider of another instance, whose safefetch allow-list
// names Server.Listener's address and whose RootCAs hold Server.Certificate().
func NewTLS(t testing.TB, opts ...Option) *Env {
	t.Helper()
	return start(t, nil, opts, true)
}

// NewWithGateway is New with the /gw gateway built as serve builds it (the server's key
// manager, LISTEN on the test database) and started; cfg adjusts its configuration (the
// roll-up job is off unless cfg turns it on). The gateway closes with the test.
func NewWithGateway(t testing.TB, cfg func(*gateway.Config), opts ...Option) *Env {
	t.Helper()
	if cfg == nil {
		cfg = func(*gateway.Config) {}
	}
	return start(t, cfg, opts, false)
}

func start(t testing.TB, gwCfg func(*gateway.Config), opts []Option, useTLS bool) *Env {
	t.Helper()
	dsn := storetest.NewDSN(t)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("handlertest: open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	smtpSrv := mailertest.NewServer(t)
	sender, err := mailer.NewSMTP(smtpSrv.URL(), "AuthGPTs <auth@example.test>")
	if err != nil {
		t.Fatal(err)
	}
	logs := &SyncBuffer{}
	clock := &Clock{}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	if useTLS {
		base = "https://" + srv.Listener.Addr().String()
	}
	baseURL, _ := url.Parse(base)
	deps := handlers.Deps{
		Store:   st,
		Mail:    sender,
		Log:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:     clock.Now,
		BaseURL: baseURL,
		Secret:  []byte("test-secret-test-secret-test-secret-0123456789"),
	}
	// The LISTEN connection and the signing keys, as serve builds them; they stop with
	// the test.
	ctx, cancel := context.WithCancel(context.Background())
	l := notify.NewListener(ctx, dsn, deps.Log)
	t.Cleanup(func() { cancel(); <-l.Done() })
	deps.Listener = l
	if deps.Keys, err = signingkeys.NewKeys(ctx, st, deps.Secret, clock.Now, deps.Log); err != nil {
		t.Fatalf("handlertest: signing keys: %v", err)
	}
	if err := deps.Keys.Watch(ctx, deps.Listener); err != nil {
		t.Fatalf("handlertest: watch keys: %v", err)
	}
	for _, o := range opts {
		o(&deps)
	}
	if gwCfg != nil {
		deps.Gateway = StartGateway(t, deps, gwCfg)
	}
	srv.Config.Handler = handlers.NewRouter(deps)
	env := &Env{Store: st, DSN: dsn, Server: srv, BaseURL: base, SMTP: smtpSrv, Clock: clock, Logs: logs, Deps: deps, Gateway: deps.Gateway}
	if useTLS {
		srv.StartTLS()
		env.Transport = srv.Client().Transport
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return env
}

// StartGateway builds and starts a gateway for the server d describes, with d's key
// manager and d's LISTEN connection (d.Listener; nil: a single instance that hears no
// revocations from elsewhere). It closes with the test. Tests call it directly for a
// second instance on the same database, giving it its own Listener.
func StartGateway(t testing.TB, d handlers.Deps, cfg func(*gateway.Config)) *gateway.Gateway {
	t.Helper()
	c := gateway.Config{Store: d.Store, Keys: d.Keys, BaseURL: d.BaseURL, Log: d.Log, Now: d.Now,
		RollupInterval: -1}
	if d.Listener != nil {
		c.Notifications = d.Listener
	}
	if cfg != nil {
		cfg(&c)
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
	// Start returns once the LISTENs are in effect, and then the caches are on.
	if c.Notifications != nil && !gw.Stats().CacheEnabled {
		t.Fatal("handlertest: the gateway could not LISTEN for revocations")
	}
	return gw
}

// Client returns a browser-like client with its own cookie jar that does not follow
// redirects, so tests see every 303.
func (e *Env) Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Transport: e.Transport,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// PostForm posts a form with the client and returns the status, body and response.
func (e *Env) PostForm(t testing.TB, c *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(e.BaseURL+path, form)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp, readBody(t, resp)
}

// Get fetches path with the client.
func (e *Env) Get(t testing.TB, c *http.Client, path string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(e.BaseURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, readBody(t, resp)
}

// RequestCode posts the email form and returns the code that arrived by SMTP.
func (e *Env) RequestCode(t testing.TB, c *http.Client, email string) string {
	t.Helper()
	before := e.SMTP.Count(email)
	resp, body := e.PostForm(t, c, "/login", url.Values{"email": {email}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /login = %d, want 200; body: %.300s", resp.StatusCode, body)
	}
	code := e.SMTP.WaitFor(t, email, before).Code()
	if code == "" {
		t.Fatal("the sign-in mail holds no 6-digit code")
	}
	return code
}

// SignIn runs the email-code journey and returns a client holding the session cookie.
func (e *Env) SignIn(t testing.TB, email string) *http.Client {
	t.Helper()
	c := e.Client()
	code := e.RequestCode(t, c, email)
	resp, body := e.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /login/verify = %d, want 303; body: %.300s", resp.StatusCode, body)
	}
	return c
}

// UniqueEmail returns an address no other test uses.
func UniqueEmail(t testing.TB, prefix string) string {
	t.Helper()
	return strings.ToLower(prefix) + "-" + randomHex(6) + "@example.com"
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// Clock is the server's time: real time shifted by an offset tests can advance.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the shifted time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// SyncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

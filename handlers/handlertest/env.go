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
	"github.com/authgpts/authgpts/store/storetest"
	"github.com/authgpts/authgpts/store/webhook"
	"github.com/authgpts/authgpts/views/email/mailer"
	"github.com/authgpts/authgpts/views/email/mailer/mailertest"
)

// Env is one running server with its database, mailbox, clock and captured logs.
type Env struct {
	Store    *store.Store
	DSN      string // the test database, for a second pool or a LISTEN connection
	Server   *httptest.Server
	BaseURL  string
	SMTP     *mailertest.Server
	Clock    *Clock
	Logs     *SyncBuffer
	Config   handlers.Config  // what the instance was built from
	Instance *handlers.Server // built by handlers.NewServer, as serve builds it
	Gateway  *gateway.Gateway // Instance.Gateway
	Webhooks *webhook.Worker  // Instance.Webhooks: delivers where Config.WebhookPolicy allows
}

// Option adjusts the instance's configuration before it is built; tests override only
// what they must (admins, limits, the fetcher's allow-list, gateway tunables).
type Option func(*handlers.Config)

// New starts an instance for the test on a fresh database, built by handlers.NewServer
// exactly as serve builds one, with the test's clock. Mail goes over SMTP (go-mail) to an
// in-process server; logs are captured as JSON so tests can assert what they hold. The
// gateway's roll-up job is off unless an option turns it on.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	smtpSrv := mailertest.NewServer(t)
	sender, err := mailer.NewSMTP(smtpSrv.URL(), "AuthGPTs <auth@example.test>")
	if err != nil {
		t.Fatal(err)
	}
	logs := &SyncBuffer{}
	clock := &Clock{}
	cfg := handlers.Config{
		DatabaseURL: storetest.NewDSN(t),
		Secret:      []byte("test-secret-test-secret-test-secret-0123456789"),
		Log:         slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:         clock.Now,
		Mail:        sender,
		Gateway:     func(c *gateway.Config) { c.RollupInterval = -1 },
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, base := StartInstance(t, cfg)
	return &Env{Store: srv.Store, DSN: cfg.DatabaseURL, Server: base, BaseURL: base.URL, SMTP: smtpSrv, Clock: clock,
		Logs: logs, Config: srv.Config(), Instance: srv, Gateway: srv.Gateway, Webhooks: srv.Webhooks}
}

// NewWithGateway is New with gw adjusting the gateway's configuration after the test
// defaults (nil: the defaults).
func NewWithGateway(t testing.TB, gw func(*gateway.Config), opts ...Option) *Env {
	t.Helper()
	return New(t, append([]Option{WithGateway(gw)}, opts...)...)
}

// WithGateway adds gw to the gateway adjustments already in the configuration.
func WithGateway(gw func(*gateway.Config)) Option {
	return func(c *handlers.Config) {
		if gw == nil {
			return
		}
		prev := c.Gateway
		c.Gateway = func(g *gateway.Config) {
			if prev != nil {
				prev(g)
			}
			gw(g)
		}
	}
}

// StartInstance builds an instance from cfg with handlers.NewServer, starts its workers
// and serves it on a new local HTTP server; both stop with the test. Tests call it directly for a second instance on the same
// database (env.Config, whose BaseURL is the first instance's, so both are one issuer),
// as a second `authgpts serve` behind the load balancer would run: its own LISTEN
// connection, key manager, caches and gateway. A nil cfg.BaseURL becomes the URL of the
// instance's own HTTP server.
func StartInstance(t testing.TB, cfg handlers.Config) (*handlers.Server, *httptest.Server) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	if cfg.BaseURL == nil {
		cfg.BaseURL, _ = url.Parse("http://" + hs.Listener.Addr().String())
	}
	srv, err := handlers.NewServer(context.Background(), cfg)
	if err != nil {
		hs.Listener.Close()
		t.Fatalf("handlertest: NewServer: %v", err)
	}
	srv.Start()
	// Start returns once the gateway's LISTENs are in effect, and then its caches are on.
	if !srv.Gateway.Stats().CacheEnabled {
		t.Fatal("handlertest: the gateway could not LISTEN for revocations")
	}
	hs.Config.Handler = srv.Handler
	hs.Start()
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("handlertest: Shutdown: %v", err)
		}
	})
	return srv, hs
}

// Client returns a browser-like client with its own cookie jar that does not follow
// redirects, so tests see every 303.
func (e *Env) Client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
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

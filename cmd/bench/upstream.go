package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/signin"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/store"
)

// The identity-source scenario: the full authorization-code flow of an app whose users
// sign in with an OpenID Connect provider, against the same flow of an email-code app.
func init() {
	Register(Scenario{Name: "upstream_oidc", Order: 70, Standalone: func(ctx context.Context, env *Env, levels []int, lim Limits, out io.Writer) error {
		return upstreamScenario(ctx, env.DatabaseURL, levels, lim, out)
	}})
}

// instance is an AuthGPTs server started in this process on its own fresh database.
type instance struct {
	env    *Env
	srv    *httptest.Server
	server *handlers.Server
	stop   func()
}

func startInstance(ctx context.Context, dsn, name string, useTLS bool, fetcher *safefetch.Fetcher) (*instance, error) {
	dbName := "authgpts_bench_" + name + "_" + randomID()
	benchDSN, err := freshDatabase(ctx, dsn, dbName)
	if err != nil {
		return nil, err
	}
	hs := httptest.NewUnstartedServer(nil)
	scheme := "http://"
	if useTLS {
		scheme = "https://"
	}
	base, _ := url.Parse(scheme + hs.Listener.Addr().String())
	srv, err := handlers.NewServer(ctx, handlers.Config{
		DatabaseURL: benchDSN,
		BaseURL:     base,
		Secret:      []byte("bench-secret-" + name + "-bench-secret-0123456789"),
		DevMode:     true, // the development mailbox: the bench reads sign-in codes there
		Migrate:     true,
		Log:         slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Fetcher:     fetcher,
	})
	if err != nil {
		hs.Listener.Close()
		return nil, err
	}
	srv.Start()
	hs.Config.Handler = srv.Handler
	tr := &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil}
	if useTLS {
		hs.StartTLS()
		tr = hs.Client().Transport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
	} else {
		hs.Start()
	}
	in := &instance{srv: hs, server: srv, env: &Env{BaseURL: base.String(), Store: srv.Store, DatabaseURL: benchDSN, runID: randomID(),
		Hasher: srv.Derived.TokenHash, Transport: tr}}
	in.stop = func() {
		hs.Close()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = dropDatabase(context.WithoutCancel(ctx), dsn, dbName)
	}
	return in, nil
}

func upstreamScenario(ctx context.Context, dsn string, levels []int, lim Limits, out io.Writer) error {
	if dsn == "" {
		return errors.New("DATABASE_URL is not set")
	}
	up, err := startInstance(ctx, dsn, "idp", true, nil)
	if err != nil {
		return err
	}
	defer up.stop()
	pool := x509.NewCertPool()
	pool.AddCert(up.srv.Certificate())
	fetcher := safefetch.New(safefetch.Options{AllowAddrs: []string{up.srv.Listener.Addr().String()}, RootCAs: pool})
	down, err := startInstance(ctx, dsn, "rp", false, fetcher)
	if err != nil {
		return err
	}
	defer down.stop()

	// down's client at up, and down's apps: one signs users in with up, one by email code.
	upClient, err := up.env.NewApp(ctx, "Identity provider", store.ClientKindGPT, down.env.BaseURL+"/login/upstream/callback")
	if err != nil {
		return err
	}
	fed, err := down.env.NewApp(ctx, "Federated API", store.ClientKindGPT, benchCallback)
	if err != nil {
		return err
	}
	local, err := down.env.NewApp(ctx, "Email API", store.ClientKindGPT, benchCallback)
	if err != nil {
		return err
	}
	sealed, err := oauth.SealSecret(down.server.Derived.UpstreamSecret, signin.SealAD(fed.App.ID, "client_secret"), []byte(upClient.Secret))
	if err != nil {
		return err
	}
	if _, err := down.env.Store.SaveIdentitySource(ctx, fed.App.OwnerID, store.IdentitySource{AppID: fed.App.ID, Kind: store.SourceOIDC,
		Issuer: up.env.BaseURL, ClientID: upClient.Client.ID, ClientSecretSealed: sealed, Scopes: "openid email"}, time.Now()); err != nil {
		return err
	}

	// The person is signed in at the provider (one session, shared); each flow starts
	// with a browser that has no session at down, so every flow goes through up.
	upBrowser, err := up.env.SignedInClient(ctx)
	if err != nil {
		return err
	}
	upURL, _ := url.Parse(up.env.BaseURL)
	upCookies := upBrowser.Jar.Cookies(upURL)
	flow := func(ctx context.Context) error {
		jar, _ := cookiejar.New(nil)
		jar.SetCookies(upURL, upCookies)
		return federatedFlow(ctx, down.env, up.env, jar, fed)
	}
	if err := flow(ctx); err != nil { // consents once at up and at down
		return fmt.Errorf("first federated flow: %w", err)
	}
	if _, err := down.env.CodeFlowTokens(ctx, local, "openid email", 1); err != nil {
		return err
	}
	emailBrowser, err := down.env.SignedInClient(ctx)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "code flow with an OpenID Connect identity source (a second AuthGPTs over TLS) vs the email-code app, same process\n")
	const row = "%-20s %11s %9s %9s %10s %10s %10s %7s\n"
	fmt.Fprintf(out, row, "scenario", "concurrency", "flows", "flows/s", "p50", "p99", "max", "errors")
	var failed error
	for _, n := range levels {
		for _, sc := range []struct {
			name string
			op   func(worker int) Op
		}{
			{"email_code_flow", func(int) Op {
				c := down.env.Client(emailBrowser.Jar)
				return func(ctx context.Context) error {
					code, err := down.env.Authorize(ctx, c, local, "openid email")
					if err != nil {
						return err
					}
					_, err = down.env.Token(ctx, c, local, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {benchCallback}})
					return err
				}
			}},
			{"upstream_oidc_flow", func(int) Op { return flow }},
		} {
			ops := make([]Op, n)
			for i := range ops {
				ops[i] = sc.op(i)
			}
			r := run(ctx, sc.name, ops, lim)
			fmt.Fprintf(out, row, r.Scenario, strconv.Itoa(n), strconv.Itoa(r.Requests), strconv.FormatFloat(r.PerSecond, 'f', 0, 64),
				msLabel(r.P50), msLabel(r.P99), msLabel(r.Max), strconv.Itoa(r.Errors))
			if r.FirstError != "" {
				fmt.Fprintf(out, "  first error: %s\n", r.FirstError)
			}
			if r.Errors > 0 && failed == nil {
				failed = fmt.Errorf("%s at concurrency %d: %d failed flows", r.Scenario, n, r.Errors)
			}
		}
	}
	return failed
}

// federatedFlow is one GPT authorization through down for an app whose users sign in
// with up: down /oauth/authorize → /login/upstream → up /oauth/authorize (signed in,
// remembered consent) → down /login/upstream/callback (code exchange at up over TLS, ID
// token verified with go-oidc) → down /oauth/authorize (remembered consent) → code →
// down /oauth/token.
func federatedFlow(ctx context.Context, down, up *Env, jar http.CookieJar, seed AppSeed) error {
	c := &http.Client{Transport: multiTransport{down: down.Transport, up: up.Transport, upBase: up.BaseURL}, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"response_type": {"code"}, "client_id": {seed.Client.ID}, "redirect_uri": {benchCallback},
		"scope": {"openid email"}, "state": {oauth.NewToken("")[:16]}}
	next := down.BaseURL + oauth.PathAuthorize + "?" + q.Encode()
	for range 8 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return err
		}
		resp, body, err := send(c, req)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK { // a consent page, the first time only
			m := ticketField.FindStringSubmatch(body)
			if m == nil {
				return fmt.Errorf("%s answered 200 without a consent form", req.URL.Path)
			}
			base := down
			if strings.HasPrefix(next, up.BaseURL) {
				base = up
			}
			form := url.Values{"ticket": {html.UnescapeString(m[1])}, "decision": {"allow"}, "scope": {"openid", "email"}}
			if resp, _, err = base.postForm(ctx, c, "/oauth/consent", form); err != nil {
				return err
			}
		}
		if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
			return fmt.Errorf("%s answered %d", req.URL.Path, resp.StatusCode)
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			return err
		}
		if strings.HasPrefix(loc.String(), benchCallback) {
			code := loc.Query().Get("code")
			if code == "" {
				return fmt.Errorf("authorization error %q", loc.Query().Get("error"))
			}
			_, err := down.Token(ctx, c, seed, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {benchCallback}})
			return err
		}
		next = loc.String()
	}
	return errors.New("too many redirects")
}

// multiTransport sends requests for up over its TLS transport and the rest over down's.
type multiTransport struct {
	down, up http.RoundTripper
	upBase   string
}

func (m multiTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.String(), m.upBase) {
		return m.up.RoundTrip(r)
	}
	return m.down.RoundTrip(r)
}

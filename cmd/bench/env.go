package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// Env is what scenarios seed with and send requests through: the server's base URL, its
// database (to seed apps and clients directly) and its root secret (to hash the client
// secrets the seeds generate), and one keep-alive transport shared by every worker.
type Env struct {
	BaseURL     string
	Store       *store.Store
	DatabaseURL string
	Hasher      oauth.Hasher // zero when only standalone scenarios run
	Transport   *http.Transport
	// UpstreamDelay is how long the gateway scenario's stand-in API waits per call.
	UpstreamDelay time.Duration
	// GatewayUsers is how many users' tokens the gateway scenario's many-user target
	// cycles through.
	GatewayUsers int

	mu       sync.Mutex
	signedIn *http.Client // one signed-in browser session, shared
	runID    string
}

// Client returns an HTTP client over the shared transport that does not follow
// redirects (scenarios look at every 303).
func (e *Env) Client(jar http.CookieJar) *http.Client {
	return &http.Client{
		Transport: e.Transport,
		Jar:       jar,
		Timeout:   30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// AppSeed is an app with a client and its clear secret.
type AppSeed struct {
	App         store.App
	Client      store.Client
	Secret      string
	RedirectURI string
}

// NewApp creates an app owned by a bench developer with a first client of kind.
func (e *Env) NewApp(ctx context.Context, name, kind string, redirectURIs ...string) (AppSeed, error) {
	owner, err := e.Store.EnsureUser(ctx, "bench-developer@example.com")
	if err != nil {
		return AppSeed{}, err
	}
	nc, secret := e.newClient(kind, redirectURIs)
	app, client, err := e.Store.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: name + " " + e.runID, Client: nc}, time.Now())
	if err != nil {
		return AppSeed{}, err
	}
	seed := AppSeed{App: app, Client: client, Secret: secret}
	if len(redirectURIs) > 0 {
		seed.RedirectURI = redirectURIs[0]
	}
	return seed, nil
}

// AddClient adds a client of kind to an existing app.
func (e *Env) AddClient(ctx context.Context, app store.App, kind string, redirectURIs ...string) (AppSeed, error) {
	nc, secret := e.newClient(kind, redirectURIs)
	nc.AppID = app.ID
	client, err := e.Store.CreateClient(ctx, nc, time.Now())
	if err != nil {
		return AppSeed{}, err
	}
	seed := AppSeed{App: app, Client: client, Secret: secret}
	if len(redirectURIs) > 0 {
		seed.RedirectURI = redirectURIs[0]
	}
	return seed, nil
}

func (e *Env) newClient(kind string, redirectURIs []string) (store.NewClient, string) {
	nc := store.NewClient{ID: oauth.NewClientID(), Name: "Bench " + kind, Kind: kind, RedirectURIs: redirectURIs, Origin: store.ClientOriginCLI}
	var secret string
	if kind != store.ClientKindPublic {
		secret = oauth.NewToken(oauth.PrefixClientSecret)
		nc.SecretHash, nc.SecretHint = e.Hasher.Hash(secret), oauth.SecretHint(secret)
	}
	return nc, secret
}

var devMailCode = regexp.MustCompile(`data-testid="dev-mail-text">[^<]*?\b([0-9]{6})\b`)

// SignedInClient returns a client holding a signed-in session of the bench end user,
// signing in once through the real email-code flow (the server runs in development
// mode, so the code is read from /dev/mail).
func (e *Env) SignedInClient(ctx context.Context) (*http.Client, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.signedIn != nil {
		return e.signedIn, nil
	}
	c, err := e.SignIn(ctx, "bench-user-"+e.runID+"@example.com")
	if err != nil {
		return nil, err
	}
	e.signedIn = c
	return c, nil
}

// SignIn signs email in through the real email-code flow and returns a client holding
// the session (codes are throttled per IP: a few dozen users per run at most).
func (e *Env) SignIn(ctx context.Context, email string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := e.Client(jar)
	if _, _, err := e.postForm(ctx, c, "/login", url.Values{"email": {email}}); err != nil {
		return nil, err
	}
	_, body, err := e.get(ctx, c, "/dev/mail")
	if err != nil {
		return nil, err
	}
	m := devMailCode.FindStringSubmatch(body)
	if m == nil {
		return nil, errors.New("no sign-in code at /dev/mail: is the server in development mode (http on 127.0.0.1)?")
	}
	resp, _, err := e.postForm(ctx, c, "/login/verify", url.Values{"email": {email}, "code": {m[1]}})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("sign-in answered %d", resp.StatusCode)
	}
	return c, nil
}

var ticketField = regexp.MustCompile(`name="ticket" value="([^"]+)"`)

// Authorize runs GET /oauth/authorize for the signed-in user and returns the code,
// answering the consent page with Allow when it shows (first time only: consent is
// remembered).
func (e *Env) Authorize(ctx context.Context, c *http.Client, seed AppSeed, scope string) (string, error) {
	q := url.Values{"response_type": {"code"}, "client_id": {seed.Client.ID}, "redirect_uri": {seed.RedirectURI},
		"scope": {scope}, "state": {oauth.NewToken("")[:16]}}
	resp, body, err := e.get(ctx, c, oauth.PathAuthorize+"?"+q.Encode())
	if err != nil {
		return "", err
	}
	if resp.StatusCode == http.StatusOK {
		m := ticketField.FindStringSubmatch(body)
		if m == nil {
			return "", errors.New("authorize answered 200 without a consent form")
		}
		form := url.Values{"ticket": {html.UnescapeString(m[1])}, "decision": {"allow"}}
		for _, s := range strings.Fields(scope) {
			form.Add("scope", s)
		}
		if resp, _, err = e.postForm(ctx, c, "/oauth/consent", form); err != nil {
			return "", err
		}
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("authorize answered %d", resp.StatusCode)
	}
	code := loc.Query().Get("code")
	if code == "" {
		return "", fmt.Errorf("authorize error %q", loc.Query().Get("error"))
	}
	return code, nil
}

// TokenResponse is the part of a token response scenarios use.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// Token posts a token request with the client secret in the body (ChatGPT's default).
func (e *Env) Token(ctx context.Context, c *http.Client, seed AppSeed, form url.Values) (TokenResponse, error) {
	form.Set("client_id", seed.Client.ID)
	if seed.Secret != "" {
		form.Set("client_secret", seed.Secret)
	}
	resp, body, err := e.postForm(ctx, c, oauth.PathToken, form)
	if err != nil {
		return TokenResponse{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return TokenResponse{}, fmt.Errorf("token endpoint answered %d: %.200s", resp.StatusCode, body)
	}
	var tr TokenResponse
	if err := json.Unmarshal([]byte(body), &tr); err != nil {
		return TokenResponse{}, err
	}
	return tr, nil
}

// CodeFlowTokens runs the authorization-code flow n times for the signed-in user.
func (e *Env) CodeFlowTokens(ctx context.Context, seed AppSeed, scope string, n int) ([]TokenResponse, error) {
	c, err := e.SignedInClient(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TokenResponse, 0, n)
	for range n {
		code, err := e.Authorize(ctx, c, seed, scope)
		if err != nil {
			return nil, err
		}
		tr, err := e.Token(ctx, c, seed, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {seed.RedirectURI}})
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	return out, nil
}

func (e *Env) get(ctx context.Context, c *http.Client, path string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.BaseURL+path, nil)
	if err != nil {
		return nil, "", err
	}
	return send(c, req)
}

func (e *Env) postForm(ctx context.Context, c *http.Client, path string, form url.Values) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.BaseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return send(c, req)
}

// send does the request and reads the whole body, so the connection is reused.
func send(c *http.Client, req *http.Request) (*http.Response, string, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

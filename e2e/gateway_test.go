package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth/resource"
	"github.com/authgpts/authgpts/store"
)

// gptAction plays ChatGPT's backend for a GPT action with golang.org/x/oauth2: it
// builds the authorization URL (state, no PKCE), receives the callback, checks state
// and iss, and exchanges the code with the client secret in the body, ChatGPT's default
// "POST request" token exchange.
type gptAction struct {
	srv   *httptest.Server
	conf  oauth2.Config
	state string

	mu    sync.Mutex
	token *oauth2.Token
	err   error
}

func newGPTAction(t *testing.T, issuer string) *gptAction {
	t.Helper()
	g := &gptAction{state: "gpt-" + handlertest.UniqueEmail(t, "state")[:20]}
	mux := http.NewServeMux()
	mux.HandleFunc("/aip/g-journey/oauth/callback", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		q := r.URL.Query()
		switch {
		case q.Get("state") != g.state:
			g.err = fmt.Errorf("callback state %q, want %q", q.Get("state"), g.state)
		case q.Get("iss") != issuer: // RFC 9207
			g.err = fmt.Errorf("callback iss %q, want %q", q.Get("iss"), issuer)
		default:
			g.token, g.err = g.conf.Exchange(r.Context(), q.Get("code"))
		}
		if g.err != nil {
			http.Error(w, g.err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "Connected")
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	g.conf = oauth2.Config{
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/oauth/authorize", TokenURL: issuer + "/oauth/token",
			AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: g.srv.URL + "/aip/g-journey/oauth/callback",
		Scopes:      []string{"openid", "email"},
	}
	return g
}

var (
	ticketField = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
	scopeField  = regexp.MustCompile(`name="scope" value="([^"]+)"`)
	grantRow    = regexp.MustCompile(`data-testid="grant-([0-9a-f-]{36})"`)
)

// connect runs journey 3 for the signed-in browser: the GPT's authorization URL, the
// consent page, Allow, and the redirect to the GPT's callback, which exchanges the code.
func (g *gptAction) connect(t *testing.T, env *handlertest.Env, browser *http.Client) *oauth2.Token {
	t.Helper()
	resp, err := browser.Get(g.conf.AuthCodeURL(g.state))
	if err != nil {
		t.Fatal(err)
	}
	page := readString(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize = %d, want the consent page: %.300s", resp.StatusCode, page)
	}
	m := ticketField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no consent form: %.300s", page)
	}
	form := url.Values{"ticket": {html.UnescapeString(m[1])}, "decision": {"allow"}}
	for _, s := range scopeField.FindAllStringSubmatch(page, -1) {
		form.Add("scope", html.UnescapeString(s[1]))
	}
	resp, body := env.PostForm(t, browser, "/oauth/consent", form)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), g.conf.RedirectURL+"?") {
		t.Fatalf("consent = %d to %q, want 303 to the GPT: %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, err = browser.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if body := readString(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("the GPT's callback: %d %s", resp.StatusCode, body)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil || g.token == nil {
		t.Fatalf("token exchange: %v", g.err)
	}
	return g.token
}

// upstreamAPI is the developer's API behind the gateway. It checks every call as a
// careful developer would, with the Go middleware against the server's published JWKS,
// and records what it saw.
type upstreamAPI struct {
	*httptest.Server
	base     string // the upstream URL set in the portal
	verifier *resource.Verifier

	mu    sync.Mutex
	calls []upstreamCall
}

type upstreamCall struct {
	Path, User, Email, Scopes, Client, Authorization string
	Assertion                                        resource.Claims
	AssertionErr                                     error
}

func newUpstreamAPI(t *testing.T, issuer string) *upstreamAPI {
	t.Helper()
	u := &upstreamAPI{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := upstreamCall{Path: r.URL.Path, User: r.Header.Get("X-AuthGPTs-User"), Email: r.Header.Get("X-AuthGPTs-Email"),
			Scopes: r.Header.Get("X-AuthGPTs-Scopes"), Client: r.Header.Get("X-AuthGPTs-Client"), Authorization: r.Header.Get("Authorization")}
		c.Assertion, c.AssertionErr = u.verifier.VerifyAssertion(r.Context(), r.Header.Get(resource.AssertionHeader), u.base)
		u.mu.Lock()
		u.calls = append(u.calls, c)
		u.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/fail") {
			http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/missing") {
			http.Error(w, `{"error":"no such note"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"notes": []string{"first", "second"}, "for": c.User})
	}))
	t.Cleanup(u.Close)
	u.base = u.URL + "/api"
	v, err := resource.New(resource.Config{Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	u.verifier = v
	return u
}

func (u *upstreamAPI) seen() []upstreamCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamCall(nil), u.calls...)
}

// setApp saves the app's gateway settings as the portal's settings form does.
func setApp(t *testing.T, env *handlertest.Env, fx handlertest.AppFixture, upstream string, edit func(*store.AppSettings)) {
	t.Helper()
	s := fx.App.Settings()
	s.UpstreamURL = upstream
	edit(&s)
	if _, err := env.Store.UpdateAppSettings(context.Background(), fx.Owner.ID, fx.App.ID, s, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestJourney_GPTCallsMeteredAPIUsageThenRevoke is journeys 3, 4, 6 and 7 over real
// HTTP: a stand-in GPT connects with x/oauth2, calls the API through the gateway until
// its free credits run out, the developer reads the numbers on the usage page, and the
// end user revokes the app on /account, after which the old token is refused.
func TestJourney_GPTCallsMeteredAPIUsageThenRevoke(t *testing.T) {
	env := handlertest.NewWithGateway(t, nil)
	ctx := context.Background()
	gpt := newGPTAction(t, env.BaseURL)
	api := newUpstreamAPI(t, env.BaseURL)
	devEmail, userEmail := handlertest.UniqueEmail(t, "developer"), handlertest.UniqueEmail(t, "enduser")

	// The developer's app: metered, 2 credits a call, 10 free: five paid calls.
	fx := env.NewApp(t, devEmail, store.ClientKindGPT, gpt.conf.RedirectURL)
	gpt.conf.ClientID, gpt.conf.ClientSecret = fx.Client.ID, fx.Secret
	const cost, free = 2, 10
	setApp(t, env, fx, api.base, func(s *store.AppSettings) {
		s.MeteringEnabled, s.CreditsPerCall, s.FreeCredits, s.RateLimitPerMinute = true, cost, free, 0
	})

	// Journey 3: connect.
	browser := env.SignIn(t, userEmail)
	tok := gpt.connect(t, env, browser)
	if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Extra("id_token") == nil || tok.Extra("scope") != "openid email" {
		t.Fatalf("token response: type %q, refresh %t, id_token %t, scope %v", tok.TokenType, tok.RefreshToken != "", tok.Extra("id_token") != nil, tok.Extra("scope"))
	}
	user, err := env.Store.UserByEmail(ctx, userEmail)
	if err != nil {
		t.Fatal(err)
	}

	// Journey 4: calls through the gateway until the credits run out.
	gw := env.BaseURL + "/gw/" + fx.App.Slug
	client := gpt.conf.Client(ctx, tok)
	const paid = free / cost
	for i := range paid {
		resp, err := client.Get(fmt.Sprintf("%s/notes?page=%d", gw, i))
		if err != nil {
			t.Fatal(err)
		}
		if body := readString(t, resp); resp.StatusCode != 200 || !strings.Contains(body, user.ID) {
			t.Fatalf("call %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	resp, err := client.Get(gw + "/notes")
	if err != nil {
		t.Fatal(err)
	}
	var refused map[string]any
	if err := json.Unmarshal([]byte(readString(t, resp)), &refused); err != nil || resp.StatusCode != http.StatusPaymentRequired ||
		refused["error"] != "insufficient_credits" || refused["balance"] != 0.0 || !strings.Contains(fmt.Sprint(refused["error_description"]), fx.App.Name) {
		t.Fatalf("call after the credits ran out: %d %v (%v), want 402 insufficient_credits naming the app", resp.StatusCode, refused, err)
	}

	// What the upstream saw: identity headers, a valid assertion, never the token.
	seen := api.seen()
	if len(seen) != paid {
		t.Fatalf("the upstream got %d calls, want %d (the 402 must not reach it)", len(seen), paid)
	}
	for i, c := range seen {
		if c.Path != "/api/notes" || c.User != user.ID || c.Email != userEmail || c.Scopes != "openid email" || c.Client != fx.Client.ID {
			t.Errorf("call %d: upstream saw %+v", i+1, c)
		}
		if c.Authorization != "" {
			t.Errorf("call %d: the caller's Authorization header reached the upstream", i+1)
		}
		if a := c.Assertion; c.AssertionErr != nil || a.Subject != user.ID || a.ClientID != fx.Client.ID || a.Email != userEmail || !a.ViaGateway {
			t.Errorf("call %d: assertion %+v, %v", i+1, a, c.AssertionErr)
		}
	}

	// Journey 6: the developer reads the usage page once the events are rolled up.
	if err := env.Gateway.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Gateway.RollUp(ctx); err != nil {
		t.Fatal(err)
	}
	dev := env.SignIn(t, devEmail)
	for _, rng := range []string{"24h", "7d", "30d"} {
		resp, page := env.Get(t, dev, "/dashboard/apps/"+fx.App.Slug+"/usage?range="+rng)
		if resp.StatusCode != 200 {
			t.Fatalf("usage page %s: %d", rng, resp.StatusCode)
		}
		want := map[string]string{"calls": fmt.Sprint(paid + 1), "users": "1", "errors": "1", "credits": fmt.Sprint(free)}
		for key, v := range want {
			if got := statValue(page, key); got != v {
				t.Errorf("%s: %s on the page = %q, want %s", rng, key, got, v)
			}
		}
		row := regexp.MustCompile(`<td[^>]*>` + regexp.QuoteMeta(userEmail) + `</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td>`).FindStringSubmatch(page)
		if row == nil || row[1] != fmt.Sprint(paid+1) || row[2] != fmt.Sprint(free) || row[3] != "0" {
			t.Errorf("%s: top users row %v, want %s calls, %d credits, balance 0", rng, row, fmt.Sprint(paid+1), free)
		}
	}

	// Journey 7: the end user revokes the app on /account; the old token stops at once.
	resp, page := env.Get(t, browser, "/account")
	m := grantRow.FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil || !strings.Contains(page, fx.App.Name) {
		t.Fatalf("/account: %d, connected app missing: %.400s", resp.StatusCode, page)
	}
	if resp, body := env.PostForm(t, browser, "/account/grants/"+m[1]+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d %.300s", resp.StatusCode, body)
	}
	deadline := time.Now().Add(time.Second)
	for {
		resp, err := client.Get(gw + "/notes")
		if err != nil {
			t.Fatal(err)
		}
		body := readString(t, resp)
		if resp.StatusCode == http.StatusUnauthorized {
			if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.Contains(body, "revoked") {
				t.Errorf("after revocation: %s %s", resp.Header.Get("WWW-Authenticate"), body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still answers %d a second after the revocation", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The refresh token died with the grant.
	if _, err := gpt.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil ||
		!strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh after revocation: %v, want invalid_grant", err)
	}
	if len(api.seen()) != paid {
		t.Errorf("the upstream got calls after the revocation")
	}
}

var statRE = regexp.MustCompile(`data-testid="stat-([a-z]+)"[^>]*>([^<]*)<`)

// statValue returns the headline number the usage page shows for key.
func statValue(page, key string) string {
	for _, m := range statRE.FindAllStringSubmatch(page, -1) {
		if m[1] == key {
			return strings.TrimSpace(html.UnescapeString(m[2]))
		}
	}
	return ""
}

func readString(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBrowser_UsagePage drives real calls through the gateway over nine simulated days
// (three users, a few 4xx and 5xx), rolls them up, and captures the developer's usage
// page for each range at desktop and phone widths, switching ranges with htmx.
func TestBrowser_UsagePage(t *testing.T) {
	env := handlertest.NewWithGateway(t, nil)
	ctx := context.Background()
	api := newUpstreamAPI(t, env.BaseURL)
	devEmail := handlertest.UniqueEmail(t, "developer")
	fx := env.NewApp(t, devEmail, store.ClientKindGPT, "https://chatgpt.com/aip/g-usage/oauth/callback")
	setApp(t, env, fx, api.base, func(s *store.AppSettings) {
		s.Name = "Weather API"
		s.MeteringEnabled, s.CreditsPerCall, s.FreeCredits, s.RateLimitPerMinute = true, 1, 5000, 0
		s.AccessTokenTTLSeconds = 30 * 24 * 3600 // the tokens outlive the simulated days
	})
	fx.App.Name = "Weather API"
	var tokens []string
	for _, name := range []string{"ann", "bob", "cid"} {
		tokens = append(tokens, env.UserToken(t, fx, handlertest.UniqueEmail(t, name), "openid email").Access)
	}
	paths := []string{"/forecast", "/forecast", "/forecast", "/current", "/current", "/alerts", "/missing", "/forecast", "/current", "/fail"}
	calls := 0
	call := func(n int) {
		for i := range n {
			req, _ := http.NewRequest("GET", env.BaseURL+"/gw/"+fx.App.Slug+paths[(calls+i)%len(paths)], nil)
			req.Header.Set("Authorization", "Bearer "+tokens[(calls+i)%(1+calls%3)])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readString(t, resp)
		}
		calls += n
	}
	for day := range 9 {
		call(12 + 9*(day%4))
		env.Clock.Advance(24 * time.Hour)
	}
	for hour := range 16 {
		call(3 + (hour*7)%11)
		env.Clock.Advance(time.Hour)
	}
	if err := env.Gateway.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Gateway.RollUp(ctx); err != nil {
		t.Fatal(err)
	}

	browserCtx := NewBrowser(t, 1280, 900)
	signInBrowser(t, browserCtx, env, devEmail)
	page := env.BaseURL + "/dashboard/apps/" + fx.App.Slug + "/usage"
	if err := chromedp.Do(browserCtx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`[data-testid="usage-panel"]`))); err != nil {
		t.Fatal(err)
	}
	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 900}, {"phone", 375, 800}} {
		if size.width < 600 {
			if err := chromedp.Do(browserCtx, chromedp.EmulateViewport(int64(size.width), int64(size.height), chromedp.EmulateMobile)); err != nil {
				t.Fatal(err)
			}
		}
		// The page opens on 24 h: each click below changes the range, so waiting for the
		// new data-range waits for the swap.
		for _, rng := range []string{"7d", "30d", "24h"} {
			// Range changes are htmx swaps that push the URL.
			err := chromedp.Do(browserCtx,
				chromedp.Click(chromedp.CSS(`[data-testid="range-`+rng+`"]`)),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="usage-panel"][data-range="`+rng+`"]`)),
				chromedp.WaitVisible(chromedp.CSS(`#chart-calls`)),
			)
			if err != nil {
				t.Fatalf("%s %s: %v", size.name, rng, err)
			}
			if loc, _ := chromedp.Run(browserCtx, chromedp.Location()); !strings.Contains(loc, "range="+rng) {
				t.Errorf("after the swap the URL is %s, want range=%s", loc, rng)
			}
			Screenshot(t, browserCtx, "usage-"+rng+"-"+size.name)
		}
	}
	// The 30-day view counts every call made.
	err := chromedp.Do(browserCtx,
		chromedp.Click(chromedp.CSS(`[data-testid="range-30d"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="usage-panel"][data-range="30d"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(browserCtx, chromedp.Text(chromedp.CSS(`[data-testid="stat-calls"]`)))
	if err != nil || got != fmt.Sprint(calls) {
		t.Errorf("30 days: the page shows %q calls (%v), want %d", got, err, calls)
	}
}

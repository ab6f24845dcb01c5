package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// standInGPT plays ChatGPT's part of a GPT action: it starts the flow, receives the
// callback, exchanges the code with the secret in the body and calls /oauth/userinfo,
// exactly as the GPT's backend would, then shows the browser a page.
type standInGPT struct {
	t        *testing.T
	srv      *httptest.Server
	issuer   string
	clientID string
	secret   string
	state    string

	mu       sync.Mutex
	callback url.Values
	token    map[string]any
	userinfo map[string]any
	err      error
}

const standInCallbackPath = "/aip/g-standin/oauth/callback"

func newStandInGPT(t *testing.T, issuer string) *standInGPT {
	s := &standInGPT{t: t, issuer: issuer, state: "gpt-state-" + fmt.Sprint(len(t.Name()))}
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		q := url.Values{"response_type": {"code"}, "client_id": {s.clientID}, "redirect_uri": {s.redirectURI()},
			"state": {s.state}, "scope": {""}} // ChatGPT: no PKCE, empty scope field
		http.Redirect(w, r, s.issuer+"/oauth/authorize?"+q.Encode(), http.StatusFound)
	})
	mux.HandleFunc(standInCallbackPath, s.handleCallback)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *standInGPT) redirectURI() string { return s.srv.URL + standInCallbackPath }

func (s *standInGPT) handleCallback(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.callback = r.URL.Query()
	s.err = s.exchange()
	msg := "Connected"
	if s.err != nil {
		msg = "Failed: " + s.err.Error()
	} else if email, _ := s.userinfo["email"].(string); email != "" {
		msg = "Connected as " + email
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><title>Stand-in GPT</title><h1 id="result">%s</h1>`, html.EscapeString(msg))
}

func (s *standInGPT) exchange() error {
	if s.callback.Get("state") != s.state || s.callback.Get("iss") != s.issuer || s.callback.Get("code") == "" {
		return fmt.Errorf("bad callback %v", s.callback)
	}
	resp, err := http.PostForm(s.issuer+"/oauth/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {s.callback.Get("code")}, "redirect_uri": {s.redirectURI()},
		"client_id": {s.clientID}, "client_secret": {s.secret},
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s.token); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token endpoint answered %d (%v)", resp.StatusCode, err)
	}
	req, _ := http.NewRequest(http.MethodGet, s.issuer+"/oauth/userinfo", nil)
	req.Header.Set("Authorization", fmt.Sprintf("%s %s", s.token["token_type"], s.token["access_token"]))
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp2.Body.Close()
	if err := json.NewDecoder(resp2.Body).Decode(&s.userinfo); err != nil || resp2.StatusCode != http.StatusOK {
		return fmt.Errorf("userinfo answered %d (%v)", resp2.StatusCode, err)
	}
	return nil
}

// TestBrowser_ConnectGPT is journey 3 in Chromium: a stand-in GPT sends the user to
// /oauth/authorize, the user signs in with the emailed code, sees the consent page
// (screenshots at 1280 and 375 px), allows, and the stand-in exchanges the code and
// reads /oauth/userinfo.
func TestBrowser_ConnectGPT(t *testing.T) {
	env := handlertest.New(t)
	gpt := newStandInGPT(t, env.BaseURL)
	app := env.NewApp(t, handlertest.UniqueEmail(t, "developer"), store.ClientKindGPT, gpt.redirectURI())
	gpt.clientID, gpt.secret = app.Client.ID, app.Secret
	email := handlertest.UniqueEmail(t, "enduser")

	ctx := NewBrowser(t, 1280, 900)
	err := chromedp.Do(ctx,
		chromedp.Navigate(gpt.srv.URL+"/start"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
	)
	if err != nil {
		t.Fatalf("start the flow: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/login?return_to=") {
		t.Fatalf("not signed in, the flow went to %s, want /login", loc)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
		chromedp.Click(chromedp.CSS(`[data-testid="email-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="code"]`)),
	)
	if err != nil {
		t.Fatalf("submit email: %v", err)
	}
	code := env.SMTP.WaitFor(t, email, 0).Code()
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="code"]`), code),
		chromedp.Click(chromedp.CSS(`[data-testid="code-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="consent"]`)),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(heading, app.Client.Name) || !strings.Contains(heading, app.App.Name) {
		t.Errorf("consent heading = %q, want the client and app names", heading)
	}
	host, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="redirect-host"]`)))
	if host != strings.TrimPrefix(gpt.srv.URL, "http://") {
		t.Errorf("redirect host on the page = %q, want %q", host, strings.TrimPrefix(gpt.srv.URL, "http://"))
	}
	Screenshot(t, ctx, "consent-desktop")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(375, 740, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	Screenshot(t, ctx, "consent-phone")

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[name="decision"][value="allow"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#result`)),
	)
	if err != nil {
		t.Fatalf("allow: %v", err)
	}
	result, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#result`)))
	gpt.mu.Lock()
	defer gpt.mu.Unlock()
	if gpt.err != nil || result != "Connected as "+email {
		t.Fatalf("stand-in GPT: %q (err %v)", result, gpt.err)
	}
	if gpt.token["token_type"] != "Bearer" || gpt.token["refresh_token"] == nil || gpt.userinfo["email_verified"] != true {
		t.Errorf("token %v, userinfo %v", gpt.token, gpt.userinfo)
	}
	Screenshot(t, ctx, "consent-connected")
}

// TestBrowser_AuthorizeErrorPage shows the error page an unregistered redirect URI gets.
func TestBrowser_AuthorizeErrorPage(t *testing.T) {
	env := handlertest.New(t)
	app := env.NewApp(t, handlertest.UniqueEmail(t, "developer"), store.ClientKindGPT, "https://chatgpt.com/aip/g-1/oauth/callback")
	ctx := NewBrowser(t, 375, 740)
	q := url.Values{"response_type": {"code"}, "client_id": {app.Client.ID}, "redirect_uri": {"https://evil.example/cb"}, "state": {"x"}}
	err := chromedp.Do(ctx,
		chromedp.Navigate(env.BaseURL+"/oauth/authorize?"+q.Encode()),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="authorize-error"]`)),
	)
	if err != nil {
		t.Fatalf("error page: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, env.BaseURL) {
		t.Fatalf("the browser left the server: %s", loc)
	}
	Screenshot(t, ctx, "authorize-error-phone")
}

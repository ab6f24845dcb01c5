package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authgpts/authgpts/handlers/handlertest"
)

// TestBrowser_PortalJourney is journey 2 of DESIGN.md in Chromium: sign in, create an
// app, read the GPT editor values off the setup page, add a GPT's callbacks with the
// one-click helper, add a custom scope and rotate the secret, all without a reload.
func TestBrowser_PortalJourney(t *testing.T) {
	env := handlertest.New(t)
	ctx := NewBrowser(t, 1280, 900)
	email := handlertest.UniqueEmail(t, "portal")
	bg := context.Background()

	signInBrowser(t, ctx, env, email)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="new-app-form"]`))); err != nil {
		t.Fatalf("dashboard after sign-in: %v", err)
	}
	Screenshot(t, ctx, "portal-1-dashboard-empty")

	// A refused callback comes back next to its field (422 swapped by htmx), typed
	// values kept.
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#app-name`), "Weather API"),
		chromedp.SendKeys(chromedp.CSS(`#app-callback`), "http://evil.example/cb"),
		chromedp.Click(chromedp.CSS(`#new-app-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#app-callback-error`)),
	)
	if err != nil {
		t.Fatalf("refused callback: %v", err)
	}
	if name, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#app-name`))); name != "Weather API" {
		t.Errorf("name after the 422 = %q, want it kept", name)
	}
	Screenshot(t, ctx, "portal-1-new-app-error")

	// New app: name only; the answer is the setup page with every value.
	err = chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.querySelector("#app-callback").value = ""`),
		chromedp.Click(chromedp.CSS(`#new-app-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="setup-page"]`)),
	)
	if err != nil {
		t.Fatalf("create app: %v", err)
	}
	Screenshot(t, ctx, "portal-2-setup")
	values := map[string]string{}
	for _, id := range []string{"client-id", "client-secret", "authorization-url", "token-url", "scope", "token-method", "server-url"} {
		v, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#setup-"+id)))
		if err != nil {
			t.Fatalf("read #setup-%s: %v", id, err)
		}
		values[id] = v
	}
	want := map[string]string{
		"authorization-url": env.BaseURL + "/oauth/authorize",
		"token-url":         env.BaseURL + "/oauth/token",
		"scope":             "openid email profile",
		"token-method":      "Default (POST request)",
		"server-url":        env.BaseURL + "/gw/weather-api",
	}
	for k, w := range want {
		if values[k] != w {
			t.Errorf("setup page %s = %q, want %q", k, values[k], w)
		}
	}
	if !strings.HasPrefix(values["client-id"], "agpt_") || !strings.HasPrefix(values["client-secret"], "agsec_") {
		t.Fatalf("client ID %q / secret prefix wrong", values["client-id"])
	}
	owner, err := env.Store.UserByEmail(bg, email)
	if err != nil {
		t.Fatal(err)
	}
	app, err := env.Store.AppBySlugForOwner(bg, owner.ID, "weather-api")
	if err != nil {
		t.Fatalf("app row: %v", err)
	}
	secrets, err := env.Store.ActiveSecrets(bg, values["client-id"], time.Now())
	if err != nil || len(secrets) != 1 || !env.Hasher().Equal(values["client-secret"], secrets[0].Hash) {
		t.Fatalf("the stored secret hash does not match the secret on the page (%d secrets, err %v)", len(secrets), err)
	}

	// The setup page at phone width.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(375, 812)); err != nil {
		t.Fatal(err)
	}
	Screenshot(t, ctx, "portal-2-setup-phone")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	// One-click GPT callbacks on the client page.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid="setup-add-callback"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#gpt-id`)),
		chromedp.SendKeys(chromedp.CSS(`#gpt-id`), "g-4bC9xYz12"),
		chromedp.Click(chromedp.CSS(`[data-testid="add-gpt-callbacks"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="redirects-notice"]`)),
	)
	if err != nil {
		t.Fatalf("add GPT callbacks: %v", err)
	}
	Screenshot(t, ctx, "portal-3-callbacks")
	client, err := env.Store.ClientByID(bg, values["client-id"])
	if err != nil {
		t.Fatal(err)
	}
	wantURIs := []string{"https://chatgpt.com/aip/g-4bC9xYz12/oauth/callback", "https://chat.openai.com/aip/g-4bC9xYz12/oauth/callback"}
	if !slices.Equal([]string(client.RedirectURIs), wantURIs) {
		t.Errorf("redirect URIs = %v, want %v", client.RedirectURIs, wantURIs)
	}

	// A custom scope on the app page; the connect panel's scope string follows.
	err = chromedp.Do(ctx,
		chromedp.Navigate(env.BaseURL+"/dashboard/apps/weather-api"),
		chromedp.WaitVisible(chromedp.CSS(`#scope-name`)),
		chromedp.SendKeys(chromedp.CSS(`#scope-name`), "forecast:read"),
		chromedp.SendKeys(chromedp.CSS(`#scope-description`), "Read your saved forecasts"),
		chromedp.Click(chromedp.CSS(`[data-testid="new-scope-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-scope="forecast:read"]`)),
	)
	if err != nil {
		t.Fatalf("add scope: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.CSS(`#scope-list`))); err != nil {
		t.Fatal(err)
	}
	Screenshot(t, ctx, "portal-4-scope")
	scope, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#connect-scope`)))
	if err != nil || scope != "openid email profile forecast:read" {
		t.Errorf("connect panel scope = %q (%v), want the new scope appended", scope, err)
	}
	scopes, _ := env.Store.ScopesByApp(bg, app.ID)
	if len(scopes) != 4 || scopes[3].Name != "forecast:read" || scopes[3].Description != "Read your saved forecasts" {
		t.Errorf("scopes = %+v, want the built-ins and forecast:read", scopes)
	}

	// Rotate the secret with a 1 h overlap: a new secret, once; the old one still works.
	err = chromedp.Do(ctx,
		chromedp.Navigate(env.BaseURL+"/dashboard/apps/weather-api/clients/"+values["client-id"]),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rotate-secret"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="rotate-secret"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rotated-secret`)),
	)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	newSecret, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#rotated-secret`)))
	if err != nil {
		t.Fatal(err)
	}
	until, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="old-secret-until"]`)))
	if err != nil || !strings.Contains(until, "old secret works until") {
		t.Errorf("old secret notice = %q (%v)", until, err)
	}
	Screenshot(t, ctx, "portal-5-rotated")
	if newSecret == values["client-secret"] || !strings.HasPrefix(newSecret, "agsec_") {
		t.Fatalf("rotated secret %q is not a new secret", newSecret[:6])
	}
	secrets, _ = env.Store.ActiveSecrets(bg, values["client-id"], time.Now())
	if len(secrets) != 2 || !env.Hasher().Equal(newSecret, secrets[0].Hash) || !env.Hasher().Equal(values["client-secret"], secrets[1].Hash) {
		t.Errorf("after rotation: %d active secrets, want the new one current and the old one in its overlap", len(secrets))
	}
	if strings.Contains(env.Logs.String(), values["client-secret"]) || strings.Contains(env.Logs.String(), newSecret) {
		t.Error("a client secret appears in the server log")
	}

	// The dashboard and the app page at phone width, for people to look at.
	err = chromedp.Do(ctx,
		chromedp.EmulateViewport(375, 812),
		chromedp.Navigate(env.BaseURL+"/dashboard"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="app-list"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	Screenshot(t, ctx, "portal-6-dashboard-phone")
	if err := chromedp.Do(ctx, chromedp.Navigate(env.BaseURL+"/dashboard/apps/weather-api"), chromedp.WaitVisible(chromedp.CSS(`#app-settings`))); err != nil {
		t.Fatal(err)
	}
	Screenshot(t, ctx, "portal-7-app-phone")
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	Screenshot(t, ctx, "portal-8-app")
}

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/lib/pq"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// connectionsFixture is an app declaring a connection at a real OAuth server, and a user
// who allowed the app (so /account offers to connect it).
type connectionsFixture struct {
	env      *handlertest.Env
	app      handlertest.AppFixture
	provider *handlertest.OAuthProvider
	email    string
	user     store.User
}

func newConnectionsFixture(t *testing.T) connectionsFixture {
	t.Helper()
	env := handlertest.New(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	app := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://chatgpt.com/aip/g-abc/oauth/callback")
	ctx := context.Background()
	p := store.ConnectionProvider{ID: store.NewRowID(), AppID: app.App.ID, Provider: "acme", Preset: "generic", DisplayName: "Acme Cloud",
		AuthorizeURL: tp.URL("/authorize"), TokenURL: tp.URL("/token"), RevokeURL: tp.URL("/revoke"), UserinfoURL: tp.URL("/user"),
		Scopes: []string{"repo", "read:user"}, ClientID: tp.ClientID, AuthStyle: store.AuthStyleBody, PKCE: true, Required: true,
		Delivery: store.DeliveryHeader, CreatedAt: env.Clock.Now()}
	var err error
	if p.KeyID, p.ClientSecretSealed, err = env.Instance.Connections.SealSecret(ctx, env.Store, p.ID, tp.Secret); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.CreateConnectionProvider(ctx, app.Owner.ID, p); err != nil {
		t.Fatal(err)
	}
	email := handlertest.UniqueEmail(t, "user")
	user, err := env.Store.EnsureUser(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.DB().Exec(`INSERT INTO grants (user_id, client_id, app_id, scopes) VALUES ($1, $2, $3, $4)`,
		user.ID, app.Client.ID, app.App.ID, pq.Array([]string{"openid", "email"})); err != nil {
		t.Fatal(err)
	}
	return connectionsFixture{env: env, app: app, provider: tp, email: email, user: user}
}

var sizes = []struct {
	name          string
	width, height int
}{{"desktop", 1280, 900}, {"phone", 375, 800}}

// TestBrowser_ConnectPopupAndRedirect: on /account, Connect opens the provider in a
// popup that reports back (postMessage to our origin) and closes, and the page shows
// the linked account; Disconnect removes it; a full-page connect returns to /account.
func TestBrowser_ConnectPopupAndRedirect(t *testing.T) {
	f := newConnectionsFixture(t)
	ctx := NewBrowser(t, 1280, 900)
	signInBrowser(t, ctx, f.env, f.email)
	linked := `[data-testid="linked-Acme Cloud"]`
	err := chromedp.Do(ctx,
		chromedp.Navigate(f.env.BaseURL+"/account"),
		chromedp.WaitVisible(chromedp.CSS(linked+` a[data-connect-popup]`)),
	)
	if err != nil {
		t.Fatalf("account page: %v", err)
	}
	// Record (across the opener's reload) whether a popup really opened.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function () {
		var open = window.open;
		window.open = function () { var w = open.apply(window, arguments); sessionStorage.setItem("popup", w ? "opened" : "blocked"); return w; };
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(linked+` a[data-connect-popup]`)),
		// The opener reloads when the popup reports "connected".
		chromedp.WaitVisible(chromedp.CSS(linked+` form[action$="/disconnect"]`)),
	)
	if err != nil {
		t.Fatalf("popup connect: %v", err)
	}
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(linked+` [data-testid="linked-status"]`)))
	if popup, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("popup") || ""`)); popup != "opened" {
		t.Fatalf("popup = %q: the connect did not run in a popup", popup)
	}
	if status != "Active" {
		t.Errorf("status after the popup = %q, want Active", status)
	}
	if q := f.provider.AuthorizeQuery(); q.Get("code_challenge_method") != "S256" {
		t.Errorf("the popup's authorization request had no PKCE: %v", q)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.confirm = () => true, true)`)); err != nil {
		t.Fatal(err)
	}
	if url, err := chromedp.Run(ctx, chromedp.Location()); err != nil || !strings.HasSuffix(url, "/account") {
		t.Errorf("opener at %q, want /account", url)
	}
	for _, size := range sizes {
		bctx := ctx
		if size.width != 1280 {
			f.env.Clock.Advance(time.Minute) // past the resend gap of sign-in codes
			bctx = NewBrowser(t, size.width, size.height)
			signInBrowser(t, bctx, f.env, f.email)
			if err := chromedp.Do(bctx, chromedp.Navigate(f.env.BaseURL+"/account"), chromedp.WaitVisible(chromedp.CSS(linked))); err != nil {
				t.Fatal(err)
			}
		}
		if err := chromedp.Do(bctx, chromedp.ScrollIntoView(chromedp.CSS(`[data-testid="linked-accounts"]`))); err != nil {
			t.Fatal(err)
		}
		Screenshot(t, bctx, "account-linked-accounts-"+size.name)
	}

	// Disconnect, then connect again with a full-page redirect.
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(linked+` form[action$="/disconnect"] button`)),
		chromedp.WaitVisible(chromedp.CSS(linked+` a[data-connect-popup]`)),
	)
	if err != nil {
		t.Fatalf("disconnect: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(f.env.BaseURL+"/connections/acme/start?app="+f.app.App.Slug),
		chromedp.WaitVisible(chromedp.CSS(linked+` form[action$="/disconnect"]`)),
	)
	url, _ := chromedp.Run(ctx, chromedp.Location())
	if err != nil || !strings.HasSuffix(url, "/account") {
		t.Fatalf("redirect connect ended at %q: %v", url, err)
	}
	if l, err := f.env.Store.LinkedAccountsByUser(context.Background(), []string{f.user.ID}); err != nil || len(l) != 1 || l[0].Status != store.ConnectionActive {
		t.Errorf("linked accounts after the redirect connect = %v, %v", l, err)
	}
}

// TestBrowser_PortalConnectionsSection shows the app's Connections section at desktop
// and phone widths, after adding a preset through the form.
func TestBrowser_PortalConnectionsSection(t *testing.T) {
	f := newConnectionsFixture(t)
	for i, size := range sizes {
		f.env.Clock.Advance(time.Minute) // past the resend gap of sign-in codes
		ctx := NewBrowser(t, size.width, size.height)
		signInBrowser(t, ctx, f.env, f.app.Owner.Email)
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(f.env.BaseURL + "/dashboard/apps/" + f.app.App.Slug),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="connection-list"]`)),
		}
		if i == 0 {
			// Add GitHub from its preset: the htmx swap lists it.
			steps = append(steps,
				chromedp.SetValue(chromedp.CSS(`#connection-preset`), "github"),
				chromedp.SendKeys(chromedp.CSS(`#connection-client-id`), "Iv1.8a61f9b3a7aba766"),
				chromedp.SendKeys(chromedp.CSS(`#connection-client-secret`), "github-secret-value"),
				chromedp.Click(chromedp.CSS(`[data-testid="new-connection-form"] button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="connection-row"][data-provider="github"]`)),
			)
		}
		steps = append(steps, chromedp.ScrollIntoView(chromedp.CSS(`[data-testid="connection-list"]`)))
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", size.name, err)
		}
		html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(`[data-testid="connection-list"]`)))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(html, "github-secret-value") || strings.Contains(html, f.provider.Secret) {
			t.Error("a provider secret is shown in the section")
		}
		ScreenshotSection(t, ctx, `[data-testid="connection-list"]`, "portal-connections-"+size.name)
	}
}

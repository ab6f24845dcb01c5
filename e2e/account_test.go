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

// TestBrowser_AccountConnectedApps shows a user's connected app at desktop and phone
// widths, then revokes it through the confirmation and the htmx swap.
func TestBrowser_AccountConnectedApps(t *testing.T) {
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "user")
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://chatgpt.com/aip/g-abc/oauth/callback")
	user, err := env.Store.EnsureUser(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	var grant string
	if err := env.Store.DB().Get(&grant, `INSERT INTO grants (user_id, client_id, app_id, scopes) VALUES ($1, $2, $3, $4) RETURNING id`,
		user.ID, fx.Client.ID, fx.App.ID, pq.Array([]string{"openid", "email", "profile"})); err != nil {
		t.Fatal(err)
	}

	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 900}, {"phone", 375, 800}} {
		env.Clock.Advance(time.Minute)
		ctx := NewBrowser(t, size.width, size.height)
		signInBrowser(t, ctx, env, email)
		if err := chromedp.Do(ctx, chromedp.Navigate(env.BaseURL+"/account"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="grant-`+grant+`"]`))); err != nil {
			t.Fatalf("account page: %v", err)
		}
		Screenshot(t, ctx, "account-"+size.name)
	}

	// Revoke in the browser: accept the confirmation, and the region swaps without the app.
	ctx := NewBrowser(t, 1280, 900)
	env.Clock.Advance(time.Minute)
	signInBrowser(t, ctx, env, email)
	err = chromedp.Do(ctx,
		chromedp.Navigate(env.BaseURL+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="grant-`+grant+`"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.confirm = () => true, true)`)); err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid="grant-`+grant+`"] button[type="submit"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-testid="grant-`+grant+`"]`)),
	)
	if err != nil {
		t.Fatalf("revoke in the browser: %v", err)
	}
	if g, _ := env.Store.GrantByID(context.Background(), grant); g.RevokedAt == nil {
		t.Error("the grant is not revoked after the browser's revoke")
	}
	Screenshot(t, ctx, "account-revoked")
}

// TestBrowser_LinkIdentities signs in with one identity, presses "Sign in with another
// identity", signs in with another and links them from the offer, at desktop and phone
// widths.
func TestBrowser_LinkIdentities(t *testing.T) {
	env := handlertest.New(t)
	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 900}, {"phone", 375, 800}} {
		first, second := handlertest.UniqueEmail(t, "first"), handlertest.UniqueEmail(t, "second")
		ctx := NewBrowser(t, size.width, size.height)
		signInBrowser(t, ctx, env, first)
		env.Clock.Advance(2 * time.Minute)
		err := chromedp.Do(ctx, chromedp.Navigate(env.BaseURL+"/account"),
			chromedp.Click(chromedp.CSS(`[data-testid="sign-in-another"]`)),
			chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)))
		if err != nil {
			t.Fatalf("sign in with another identity: %v", err)
		}
		at, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil || !strings.Contains(at, "/login?reauth=link") {
			t.Fatalf("the button led to %q (%v), want the sign-in form", at, err)
		}
		signInBrowserAt(t, ctx, env, strings.TrimPrefix(at, env.BaseURL), second)
		err = chromedp.Do(ctx, chromedp.Navigate(env.BaseURL+"/account"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="link-offer"]`)))
		if err != nil {
			t.Fatalf("the link offer after the second sign-in: %v", err)
		}
		if overflow, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); err != nil || overflow {
			t.Errorf("the account page with the offer scrolls sideways at %d px (%v)", size.width, err)
		}
		ScreenshotSection(t, ctx, `[data-testid="identities"]`, "account-link-offer-"+size.name)
		err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="link-identity"]`)),
			chromedp.WaitNotPresent(chromedp.CSS(`[data-testid="link-offer"]`)))
		if err != nil {
			t.Fatalf("link in the browser: %v", err)
		}
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="identity"]').length`))
		if err != nil || n != 2 {
			t.Fatalf("identities listed after linking = %d (%v), want 2", n, err)
		}
		ScreenshotSection(t, ctx, `[data-testid="identities"]`, "account-identities-"+size.name)
	}
}

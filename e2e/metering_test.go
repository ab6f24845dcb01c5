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

// TestBrowser_MeteringSections drives the app page's "Prices and plan" and "API keys"
// sections and the account page's personal keys in Chromium, at 1280 and 375 px: a bad
// pattern shows its field error, a good price and a key are added through htmx, and the
// new key is shown once.
func TestBrowser_MeteringSections(t *testing.T) {
	env := handlertest.New(t)
	bg := context.Background()
	devEmail := handlertest.UniqueEmail(t, "dev")
	fx := env.NewApp(t, devEmail, store.ClientKindGPT, "https://chatgpt.com/aip/g-abc/oauth/callback")
	if _, err := env.Store.DB().Exec(`UPDATE apps SET metering_enabled = true, credits_per_call = 2, free_credits = 100 WHERE id = $1`, fx.App.ID); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.AddRoutePrice(bg, fx.Owner.ID, fx.App.ID, store.RoutePrice{Method: "*", Pattern: "/v1/search/**", Credits: 5}, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := env.Store.SetPlan(bg, fx.Owner.ID, fx.App.ID, store.Plan{MonthlyAllowance: 1000, TopUpURL: "https://example.com/credits"}, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	appURL := env.BaseURL + "/dashboard/apps/" + fx.App.Slug

	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 900}, {"phone", 375, 800}} {
		env.Clock.Advance(time.Minute)
		ctx := NewBrowser(t, size.width, size.height)
		signInBrowser(t, ctx, env, devEmail)
		pattern := "/v1/chat/completions"
		if size.name == "phone" {
			pattern = "/v1/embeddings"
		}
		err := chromedp.Do(ctx,
			chromedp.Navigate(appURL),
			chromedp.WaitVisible(chromedp.CSS(`#price-pattern`)),
			chromedp.SendKeys(chromedp.CSS(`#price-pattern`), "v1/**/x"),
			chromedp.SendKeys(chromedp.CSS(`#price-credits`), "-4"),
			chromedp.Click(chromedp.CSS(`[data-testid="new-price-form"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#price-pattern-error`)),
		)
		if err != nil {
			t.Fatalf("bad price: %v", err)
		}
		elementShot(t, ctx, "#prices", "metering-prices-error-"+size.name)
		err = chromedp.Do(ctx,
			chromedp.SetValue(chromedp.CSS(`#price-pattern`), pattern),
			chromedp.SetValue(chromedp.CSS(`#price-credits`), "25"),
			chromedp.SetValue(chromedp.CSS(`#price-method`), "POST"),
			chromedp.Click(chromedp.CSS(`[data-testid="new-price-form"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="price-row"][data-pattern="`+pattern+`"]`)),
		)
		if err != nil {
			t.Fatalf("add price: %v", err)
		}
		elementShot(t, ctx, "#prices", "metering-prices-"+size.name)
		elementShot(t, ctx, "#connect-panel", "metering-connect-prices-"+size.name)
		err = chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.CSS(`#key-name`), "Nightly import "+size.name),
			chromedp.Click(chromedp.CSS(`[data-testid="new-key-form"] input[value="email"]`)),
			chromedp.SendKeys(chromedp.CSS(`#key-expires`), "90"),
			chromedp.Click(chromedp.CSS(`[data-testid="new-key-form"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="key-created"]`)),
		)
		if err != nil {
			t.Fatalf("create key: %v", err)
		}
		key, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#created-api-key`)))
		if err != nil || !strings.HasPrefix(key, "agk_") || len(key) != 47 {
			t.Fatalf("the new key field holds %q (%v)", key, err)
		}
		elementShot(t, ctx, "#api-keys", "metering-keys-"+size.name)
	}
	rules, _ := env.Store.RoutePricesByApp(bg, fx.App.ID)
	if len(rules) != 3 {
		t.Errorf("rules after the browser runs = %+v, want 3", rules)
	}

	// The end user's personal keys on /account.
	email := handlertest.UniqueEmail(t, "user")
	user, err := env.Store.EnsureUser(bg, email)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.DB().Exec(`INSERT INTO grants (user_id, client_id, app_id, scopes) VALUES ($1, $2, $3, $4)`,
		user.ID, fx.Client.ID, fx.App.ID, pq.Array([]string{"openid", "email"})); err != nil {
		t.Fatal(err)
	}
	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 900}, {"phone", 375, 800}} {
		env.Clock.Advance(time.Minute)
		ctx := NewBrowser(t, size.width, size.height)
		signInBrowser(t, ctx, env, email)
		form := `[data-testid="key-form-` + fx.App.ID + `"]`
		err := chromedp.Do(ctx,
			chromedp.Navigate(env.BaseURL+"/account"),
			chromedp.WaitVisible(chromedp.CSS(form+` summary`)),
			chromedp.Click(chromedp.CSS(form+` summary`)),
			chromedp.WaitVisible(chromedp.CSS(`#pk-`+fx.App.ID+`-name`)),
			chromedp.SendKeys(chromedp.CSS(`#pk-`+fx.App.ID+`-name`), "my laptop script"),
			chromedp.Click(chromedp.CSS(form+` button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#personal-keys [data-testid="key-created"]`)),
		)
		if err != nil {
			t.Fatalf("personal key: %v", err)
		}
		elementShot(t, ctx, "#personal-keys", "metering-account-keys-"+size.name)
	}
	keys, _ := env.Store.PersonalKeysByUser(bg, []string{user.ID})
	if len(keys) != 2 || strings.Join(keys[0].Scopes, " ") != "email openid" {
		t.Errorf("personal keys = %+v", keys)
	}
}

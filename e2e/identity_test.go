package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// sectionShot saves a PNG of one element as e2e/screenshots/<name>.png.
func sectionShot(t *testing.T, name string, png []byte) {
	t.Helper()
	if err := os.MkdirAll("screenshots", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("screenshots", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowser_IdentitySourceSection drives "How your users sign in" in Chromium at
// desktop and phone widths: an issuer whose discovery fails comes back as a 422 next to
// its field (htmx swap, typed values kept, the secret not echoed); switching to the own
// login page shows the signing secret once, the callback URL and the snippets.
func TestBrowser_IdentitySourceSection(t *testing.T) {
	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 900}, {"phone", 375, 812}} {
		t.Run(size.name, func(t *testing.T) {
			env := handlertest.New(t)
			email := handlertest.UniqueEmail(t, "idsrc")
			app := env.NewApp(t, email, store.ClientKindGPT, "https://chatgpt.com/aip/g-1/oauth/callback")
			ctx := NewBrowser(t, size.width, size.height)
			signInBrowser(t, ctx, env, email)
			secret := "upstream-secret-" + size.name
			err := chromedp.Do(ctx,
				chromedp.Navigate(env.BaseURL+"/dashboard/apps/"+app.App.Slug+"#identity-source"),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="identity-source"]`)),
				chromedp.Click(chromedp.CSS(`input[name="identity_source"][value="oidc"]`)),
				chromedp.SendKeys(chromedp.CSS(`#oidc-issuer`), "https://10.0.0.1"),
				chromedp.SendKeys(chromedp.CSS(`#upstream-client-id`), "my-client"),
				chromedp.SendKeys(chromedp.CSS(`#upstream-client-secret`), secret),
				chromedp.Click(chromedp.CSS(`[data-testid="identity-source"] button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`#oidc-issuer-error`)),
			)
			if err != nil {
				t.Fatalf("discovery failure: %v", err)
			}
			msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#oidc-issuer-error`)))
			if !strings.Contains(msg, "private or loopback") {
				t.Errorf("field error = %q", msg)
			}
			if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#upstream-client-id`))); v != "my-client" {
				t.Errorf("client ID after the 422 = %q, want it kept", v)
			}
			if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#upstream-client-secret`))); v != "" {
				t.Error("the 422 answer echoes the client secret into the form")
			}
			png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#identity-source`)))
			if err != nil {
				t.Fatal(err)
			}
			sectionShot(t, "identity-1-discovery-error-"+size.name, png)

			err = chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`input[name="identity_source"][value="own"]`)),
				chromedp.SendKeys(chromedp.CSS(`#own-login-url`), "https://app.example.com/authgpts/login"),
				chromedp.Click(chromedp.CSS(`[data-testid="identity-source"] button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="identity-saved"]`)),
				chromedp.Click(chromedp.CSS(`[data-testid="own-snippet"] summary`)),
			)
			if err != nil {
				t.Fatalf("own login page: %v", err)
			}
			shown, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`[data-testid="new-secret"] input`)))
			if !strings.HasPrefix(shown, "agown_") {
				t.Errorf("signing secret shown = %q", shown)
			}
			png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(`#identity-source`)))
			if err != nil {
				t.Fatal(err)
			}
			sectionShot(t, "identity-2-own-login-"+size.name, png)
			if strings.Contains(env.Logs.String(), secret) || strings.Contains(env.Logs.String(), shown) {
				t.Error("a secret reached the log")
			}
		})
	}
}

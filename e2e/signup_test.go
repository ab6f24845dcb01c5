package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/authgpts/authgpts/handlers/handlertest"
)

// TestBrowser_SignUpWithEmailCode signs up in Chromium by reading the code from the
// SMTP server, and lands on the dashboard.
func TestBrowser_SignUpWithEmailCode(t *testing.T) {
	env := handlertest.New(t)
	ctx := NewBrowser(t, 1280, 900)
	email := handlertest.UniqueEmail(t, "browser")

	err := chromedp.Do(ctx,
		chromedp.Navigate(env.BaseURL+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
	)
	if err != nil {
		t.Fatalf("open /signup: %v", err)
	}
	Screenshot(t, ctx, "signup-email")

	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
		chromedp.Click(chromedp.CSS(`[data-testid="email-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="code"]`)),
	)
	if err != nil {
		t.Fatalf("submit email: %v", err)
	}
	Screenshot(t, ctx, "signup-code")

	code := env.SMTP.WaitFor(t, email, 0).Code()
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="code"]`), code),
		chromedp.Click(chromedp.CSS(`[data-testid="code-form"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="apps-empty"]`)),
	)
	if err != nil {
		t.Fatalf("submit code: %v", err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
	if err != nil {
		t.Fatal(err)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(location, "/dashboard") || !strings.Contains(heading, "Your apps") {
		t.Errorf("after sign-up at %s with heading %q, want the dashboard", location, heading)
	}
	Screenshot(t, ctx, "signup-dashboard")

	// The sign-in page at phone width.
	phone := NewBrowser(t, 375, 740)
	if err := chromedp.Do(phone, chromedp.Navigate(env.BaseURL+"/login"), chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`))); err != nil {
		t.Fatal(err)
	}
	Screenshot(t, phone, "login-phone")
}

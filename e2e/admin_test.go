package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// TestBrowser_AdminConsole signs an admin in through the email-code form and captures
// the console at desktop and phone widths.
func TestBrowser_AdminConsole(t *testing.T) {
	adminEmail := handlertest.UniqueEmail(t, "admin")
	env := handlertest.New(t, func(d *handlers.Config) { d.AdminEmails = []string{adminEmail} })
	env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://chatgpt.com/aip/g-abc/oauth/callback")
	env.NewApp(t, handlertest.UniqueEmail(t, "dev2"), store.ClientKindPublic, "http://127.0.0.1/callback")

	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 900}, {"phone", 375, 800}} {
		env.Clock.Advance(time.Minute) // each browser signs in afresh: stay past the resend throttle
		ctx := NewBrowser(t, size.width, size.height)
		signInBrowser(t, ctx, env, adminEmail)
		for _, page := range []struct{ path, shot, wait string }{
			{"/admin", "admin-overview", `[data-testid="admin-stats"]`},
			{"/admin/clients", "admin-clients", `[data-testid="admin-list"]`},
			{"/admin/audit", "admin-audit", `[data-testid="audit-log"]`},
		} {
			if err := chromedp.Do(ctx, chromedp.Navigate(env.BaseURL+page.path), chromedp.WaitVisible(chromedp.CSS(page.wait))); err != nil {
				t.Fatalf("%s: %v", page.path, err)
			}
			Screenshot(t, ctx, page.shot+"-"+size.name)
		}
	}
}

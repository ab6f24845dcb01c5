package e2e

import (
	"context"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth/safefetch"
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

// TestBrowser_ConnectGPTThroughUpstreamOIDC is journey 3 for an app whose users sign in
// with an OpenID Connect provider (a second real AuthGPTs over HTTPS): the stand-in GPT
// starts the flow, Chromium is sent to the provider, signs in there with its email code,
// allows there, comes back to the app's consent page, allows, and the GPT exchanges the
// code and reads userinfo. Screenshots at 1280 and 375 px.
func TestBrowser_ConnectGPTThroughUpstreamOIDC(t *testing.T) {
	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 900}, {"phone", 375, 812}} {
		t.Run(size.name, func(t *testing.T) {
			up := handlertest.NewTLS(t)
			pool := x509.NewCertPool()
			pool.AddCert(up.Server.Certificate())
			down := handlertest.New(t, func(d *handlers.Config) {
				d.Fetcher = safefetch.New(safefetch.Options{AllowAddrs: []string{up.Server.Listener.Addr().String()}, RootCAs: pool})
			})
			upApp := up.NewApp(t, handlertest.UniqueEmail(t, "idp"), store.ClientKindGPT, down.BaseURL+"/login/upstream/callback")
			gpt := newStandInGPT(t, down.BaseURL)
			devEmail := handlertest.UniqueEmail(t, "dev")
			app := down.NewApp(t, devEmail, store.ClientKindGPT, gpt.redirectURI())
			gpt.clientID, gpt.secret = app.Client.ID, app.Secret
			dev := down.SignIn(t, devEmail)
			resp, body := down.PostForm(t, dev, "/dashboard/apps/"+app.App.Slug+"/identity-source", url.Values{
				"identity_source": {"oidc"}, "oidc_issuer": {up.BaseURL}, "upstream_client_id": {upApp.Client.ID},
				"upstream_client_secret": {upApp.Secret}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("configure the identity source = %d: %.400s", resp.StatusCode, body)
			}

			// The provider's certificate is httptest's own: this browser trusts it.
			ctx := NewBrowser(t, size.width, size.height, chromedp.Flag("ignore-certificate-errors", true))
			email := handlertest.UniqueEmail(t, "person")
			err := chromedp.Do(ctx,
				chromedp.Navigate(gpt.srv.URL+"/start"),
				chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
			)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, up.BaseURL+"/login") {
				t.Fatalf("the flow went to %s, want the provider's sign-in", loc)
			}
			Screenshot(t, ctx, "identity-3-provider-login-"+size.name)
			err = chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
				chromedp.Click(chromedp.CSS(`[data-testid="email-form"] button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`input[name="code"]`)),
			)
			if err != nil {
				t.Fatalf("provider email: %v", err)
			}
			code := up.SMTP.WaitFor(t, email, 0).Code()
			err = chromedp.Do(ctx,
				chromedp.SendKeys(chromedp.CSS(`input[name="code"]`), code),
				chromedp.Click(chromedp.CSS(`[data-testid="code-form"] button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="consent"]`)),
				chromedp.Click(chromedp.CSS(`button[name="decision"][value="allow"]`)),
			)
			if err != nil {
				t.Fatalf("provider sign-in and consent: %v", err)
			}
			// Back at the app's server: its own consent page, for the upstream identity
			// (the same template as the provider's, so wait for the address to change).
			loc := ""
			for range 200 {
				if loc, _ = chromedp.Run(ctx, chromedp.Location()); strings.HasPrefix(loc, down.BaseURL+"/oauth/authorize") {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !strings.HasPrefix(loc, down.BaseURL+"/oauth/authorize") {
				t.Fatalf("after the provider the browser is at %s, want the app's consent page", loc)
			}
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-testid="consent"]`))); err != nil {
				t.Fatal(err)
			}
			Screenshot(t, ctx, "identity-4-consent-after-provider-"+size.name)
			err = chromedp.Do(ctx,
				chromedp.Click(chromedp.CSS(`button[name="decision"][value="allow"]`)),
				chromedp.WaitVisible(chromedp.CSS(`#result`)),
			)
			if err != nil {
				t.Fatalf("allow: %v", err)
			}
			result, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#result`)))
			if result != "Connected as "+email {
				t.Fatalf("stand-in GPT says %q", result)
			}
			Screenshot(t, ctx, "identity-5-gpt-connected-"+size.name)
			gpt.mu.Lock()
			sub, idp := gpt.userinfo["sub"], gpt.userinfo["idp"]
			gpt.mu.Unlock()
			person, err := up.Store.UserByEmail(context.Background(), email)
			if err != nil || sub != person.ID || idp != up.BaseURL {
				t.Errorf("userinfo sub %v idp %v; want the provider's subject %s and issuer %s", sub, idp, person.ID, up.BaseURL)
			}
		})
	}
}

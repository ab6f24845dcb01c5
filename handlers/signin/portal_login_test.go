package signin_test

import (
	"crypto/x509"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/handlers/signin"
	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/store"
)

// The operator's AUTHGPTS_LOGIN_OIDC_* provider (a second real AuthGPTs) signs a
// developer into the portal; the email code stays; authorization requests are never
// offered it.
func TestPortalLogin_UpstreamProviderBesideEmailCode(t *testing.T) {
	up := handlertest.NewTLS(t)
	pool := x509.NewCertPool()
	pool.AddCert(up.Server.Certificate())
	var upApp handlertest.AppFixture
	down := handlertest.New(t, func(d *handlers.Config) {
		d.Fetcher = safefetch.New(safefetch.Options{AllowAddrs: []string{up.Server.Listener.Addr().String()}, RootCAs: pool})
		upApp = up.NewApp(t, handlertest.UniqueEmail(t, "operator"), store.ClientKindGPT, d.BaseURL.String()+"/login/upstream/callback")
		d.LoginOIDC = &signin.PortalProvider{Issuer: up.BaseURL, ClientID: upApp.Client.ID, ClientSecret: upApp.Secret}
	})
	w := &fedWorld{up: up, down: down, pool: pool}
	b := w.browser(t)
	person := w.upUser(t, b)

	resp, page := get(t, b, down.BaseURL+"/login")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `name="email" type="email"`) {
		t.Fatalf("/login = %d without the email form", resp.StatusCode)
	}
	host := strings.TrimPrefix(up.BaseURL, "https://")
	if !strings.Contains(page, `data-testid="login-provider"`) || !strings.Contains(page, "Continue with "+host) {
		t.Fatalf("/login does not offer the operator's provider: %.2000s", page)
	}
	_, authPage := get(t, b, down.BaseURL+"/login?return_to="+url.QueryEscape("/oauth/authorize?client_id=x"))
	if strings.Contains(authPage, `data-testid="login-provider"`) {
		t.Error("an authorization request's sign-in offers the portal's provider")
	}

	resp, _ = get(t, b, down.BaseURL+"/login/upstream?provider=portal-oidc&return_to=%2Fdashboard")
	cb := w.atUpstream(t, b, location(t, resp))
	resp, body := get(t, b, cb)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("callback = %d %q: %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	resp, body = get(t, b, down.BaseURL+"/dashboard")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, person.Email) {
		t.Fatalf("/dashboard after the upstream sign-in = %d, want the signed-in dashboard naming %s", resp.StatusCode, person.Email)
	}
	var n int
	_ = down.Store.DB().Get(&n, `SELECT count(*) FROM users WHERE issuer = $1 AND subject = $2`, up.BaseURL, person.ID)
	if n != 1 {
		t.Errorf("%d users for the portal identity, want 1", n)
	}
	if strings.Contains(down.Logs.String(), upApp.Secret) {
		t.Error("the operator's client secret is in the log")
	}
}

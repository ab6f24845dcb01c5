package connections_test

import (
	"time"

	"context"
	"github.com/authgpts/authgpts/handlers"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/connections"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// world is the AuthGPTs instance under test with a developer's app on it.
type world struct {
	env *handlertest.Env
	app handlertest.AppFixture
	svc *connections.Service
}

func newWorld(t *testing.T, opts ...handlertest.Option) *world {
	t.Helper()
	// Tests sign the same user in on several browsers: no resend gap.
	opts = append([]handlertest.Option{func(c *handlers.Config) {
		c.OTPLimits = store.OTPSendLimits{ResendAfter: time.Nanosecond, Window: time.Hour, PerEmail: 100, PerIP: 1000}
	}}, opts...)
	env := handlertest.New(t, opts...)
	app := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://chat.openai.com/aip/g-1/oauth/callback")
	return &world{env: env, app: app, svc: env.Instance.Connections}
}

// addProvider declares a provider on app (or the world's app) as the portal does.
func (w *world) addProvider(t *testing.T, app handlertest.AppFixture, p store.ConnectionProvider, secret string) store.ConnectionProvider {
	t.Helper()
	ctx := context.Background()
	p.ID, p.AppID, p.CreatedAt = store.NewRowID(), app.App.ID, w.env.Clock.Now()
	if p.Preset == "" {
		p.Preset = "generic"
	}
	if p.DisplayName == "" {
		p.DisplayName = p.Provider
	}
	if p.AuthStyle == "" {
		p.AuthStyle = store.AuthStyleBody
	}
	if p.Delivery == "" {
		p.Delivery = store.DeliveryExchange
	}
	var err error
	if p.KeyID, p.ClientSecretSealed, err = w.svc.SealSecret(ctx, w.env.Store, p.ID, secret); err != nil {
		t.Fatal(err)
	}
	if err := w.env.Store.CreateConnectionProvider(ctx, app.Owner.ID, p); err != nil {
		t.Fatalf("CreateConnectionProvider: %v", err)
	}
	return p
}

// testProviderConfig is a provider row for a testProvider of the given style.
func testProviderConfig(tp *handlertest.OAuthProvider, name string, scopes ...string) store.ConnectionProvider {
	p := store.ConnectionProvider{Provider: name, AuthorizeURL: tp.URL("/authorize"), TokenURL: tp.URL("/token"),
		RevokeURL: tp.URL("/revoke"), ClientID: tp.ClientID, Scopes: scopes, PKCE: true}
	switch tp.Style {
	case "github", "google", "notion", "linear", "slack":
		p.Preset = tp.Style
	}
	if tp.Style == "github" {
		p.UserinfoURL, p.RevokeURL = tp.URL("/user"), ""
	}
	if tp.Style == "notion" {
		p.AuthStyle, p.PKCE, p.RevokeURL = store.AuthStyleHeader, false, ""
	}
	return p
}

// removeProvider removes the world's app's provider in the portal, as its developer
// does, and waits for the revocations at the provider that follow.
func (w *world) removeProvider(t *testing.T, provider string) {
	t.Helper()
	dev := w.env.SignIn(t, w.app.Owner.Email)
	resp, body := w.env.PostForm(t, dev, "/dashboard/apps/"+w.app.App.Slug+"/connections/delete", url.Values{"provider": {provider}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("remove provider = %d: %.300s", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// start asks /connections/<provider>/start with the user's browser and returns the
// provider URL it redirects to.
func (w *world) start(t *testing.T, c *http.Client, provider, query string) *url.URL {
	t.Helper()
	resp, body := w.env.Get(t, c, "/connections/"+provider+"/start?app="+w.app.App.Slug+query)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start = %d, want 303: %.300s", resp.StatusCode, body)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// follow GETs an absolute URL with c without following redirects.
func follow(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// connectTest runs the whole connect journey against a testProvider and returns the
// callback's answer.
func (w *world) connectTest(t *testing.T, c *http.Client, provider, query string) (*http.Response, string) {
	t.Helper()
	authURL := w.start(t, c, provider, query)
	resp, body := follow(t, w.env.Client(), authURL.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("provider authorize = %d: %s", resp.StatusCode, body)
	}
	return follow(t, c, resp.Header.Get("Location"))
}

var (
	ticketRE = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
	scopeRE  = regexp.MustCompile(`name="scope" value="([^"]+)"`)
)

// allowAt answers the consent page of an AuthGPTs provider at authURL with Allow, as
// the user signed in there on pc, and returns the redirect to our callback.
func allowAt(t *testing.T, prov *handlertest.Env, pc *http.Client, authURL string) string {
	t.Helper()
	resp, body := follow(t, pc, authURL)
	if resp.StatusCode == http.StatusOK {
		m := ticketRE.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("provider consent page without a ticket: %.400s", body)
		}
		form := url.Values{"ticket": {html.UnescapeString(m[1])}, "decision": {"allow"}}
		for _, s := range scopeRE.FindAllStringSubmatch(body, -1) {
			form.Add("scope", html.UnescapeString(s[1]))
		}
		resp, body = prov.PostForm(t, pc, "/oauth/consent", form)
	}
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("provider authorization = %d, want 303: %.400s", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// linked reads the user's linked account at p.
func (w *world) linked(t *testing.T, p store.ConnectionProvider, userID string) store.LinkedAccount {
	t.Helper()
	l, err := w.env.Store.LinkedAccount(context.Background(), p.ID, userID)
	if err != nil {
		t.Fatalf("LinkedAccount: %v", err)
	}
	return l
}

func (w *world) user(t *testing.T, email string) store.User {
	t.Helper()
	u, err := w.env.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// exchange posts an RFC 8693 token exchange with the client's credentials in Basic.
func exchange(t *testing.T, base, clientID, secret string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func exchangeForm(subject, provider string) url.Values {
	return url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {subject},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_token_type": {"urn:authgpts:connection:" + provider}}
}

// serviceClient adds a service client to app and returns its ID and secret.
func (w *world) serviceClient(t *testing.T, app handlertest.AppFixture) (string, string) {
	t.Helper()
	secret := oauth.NewToken(oauth.PrefixClientSecret)
	c, err := w.env.Store.CreateClient(context.Background(), store.NewClient{ID: oauth.NewClientID(), AppID: app.App.ID, Name: "API",
		Kind: store.ClientKindService, SecretHash: w.env.Hasher().Hash(secret), SecretHint: oauth.SecretHint(secret)}, w.env.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, secret
}

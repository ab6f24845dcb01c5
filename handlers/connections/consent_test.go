package connections_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
)

// TestConsent_RequiredConnectionBeforeAllow: the consent page asks to connect a
// required provider and Allow waits for it, on the page and on the server.
func TestConsent_RequiredConnectionBeforeAllow(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	cfg := testProviderConfig(tp, "acme", "read")
	cfg.Required, cfg.DisplayName = true, "Acme"
	w.addProvider(t, w.app, cfg, tp.Secret)
	u := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))

	authorize := oauth.PathAuthorize + "?" + url.Values{"response_type": {"code"}, "client_id": {w.app.Client.ID},
		"redirect_uri": {w.app.Client.RedirectURIs[0]}, "state": {"s1"}, "scope": {"openid"}}.Encode()
	resp, page := w.env.Get(t, u, authorize)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="required-connections"`) {
		t.Fatalf("consent page = %d without the required connection: %.300s", resp.StatusCode, page)
	}
	if !strings.Contains(page, `value="allow" disabled`) {
		t.Error("Allow is enabled before the required account is connected")
	}
	wantLink := "/connections/acme/start?" + url.Values{"app": {w.app.App.Slug}, "return_to": {authorize}}.Encode()
	if !strings.Contains(html.UnescapeString(page), wantLink) {
		t.Errorf("no Connect link to %s", wantLink)
	}
	ticket := html.UnescapeString(ticketRE.FindStringSubmatch(page)[1])
	resp, _ = w.env.PostForm(t, u, "/oauth/consent", url.Values{"ticket": {ticket}, "decision": {"allow"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("Allow before connecting = %d, want 400", resp.StatusCode)
	}

	// Connecting returns to the authorization request, whose page now allows.
	resp, _ = w.connectTest(t, u, "acme", "&return_to="+url.QueryEscape(authorize))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != authorize {
		t.Fatalf("connect = %d → %q, want back to the authorization request", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page = w.env.Get(t, u, authorize)
	if strings.Contains(page, `data-testid="required-connections"`) || strings.Contains(page, `value="allow" disabled`) {
		t.Fatal("the consent page still asks to connect")
	}
	tokens := w.env.UserTokenFor(t, u, w.app, "")
	if tokens.Access == "" {
		t.Fatal("no token after connecting")
	}
}

// TestConnect_PopupReportsToTheOpener: in popup mode the callback answers the page that
// posts the result to the AuthGPTs origin (static/app.js) instead of redirecting.
func TestConnect_PopupReportsToTheOpener(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	w.addProvider(t, w.app, testProviderConfig(tp, "acme", "read"), tp.Secret)
	u := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	resp, body := w.connectTest(t, u, "acme", "&mode=popup")
	base, _ := url.Parse(w.env.BaseURL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-origin="`+base.Scheme+"://"+base.Host+`"`) ||
		!strings.Contains(body, `data-status="connected"`) || strings.Contains(body, "<script>") {
		t.Fatalf("popup callback = %d: %.500s", resp.StatusCode, body)
	}
}

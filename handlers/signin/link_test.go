package signin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
)

// The same person signs in to down through an app whose users sign in with up (OpenID
// Connect) and, minutes later in the same browser, asks on /account to link another
// identity and signs in with an email code: two identities, until /account links them. Linked, the email identity's account page manages the
// app the upstream identity connected; that app's tokens carry the upstream subject.
// Signed in with the upstream identity, which up's developer controls, the page manages
// that identity alone.
func TestLinkIdentities_EmailCodeAndUpstreamOIDC(t *testing.T) {
	w := newFedWorld(t)
	w.useOIDC(t)
	b := w.browser(t)

	person := w.upUser(t, b)
	tok := w.fromCallback(t, b, w.atUpstream(t, b, w.toUpstream(t, b, "link-state")), "link-state")
	claims, err := w.down.Instance.Keys.KeySet().VerifyAccessToken(tok.AccessToken, w.down.Clock.Now(), w.down.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	upstreamUserID := claims.Subject // down's user for the identity (up, person.ID)

	// Minutes later, "Sign in with another identity" on /account, then an email code.
	w.down.Clock.Advance(4 * time.Minute)
	resp, _ := w.down.PostForm(t, b, "/account/identities/start", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start linking = %d", resp.StatusCode)
	}
	w.down.Clock.Advance(time.Minute)
	email := handlertest.UniqueEmail(t, "mailer")
	code := w.down.RequestCode(t, b, email)
	if resp, body := w.down.PostForm(t, b, "/login/verify", url.Values{"email": {email}, "code": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("email sign-in = %d: %.300s", resp.StatusCode, body)
	}
	resp, page := get(t, b, w.down.BaseURL+"/account")
	host := strings.TrimPrefix(w.up.BaseURL, "https://")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="link-offer"`) || !strings.Contains(page, person.Email) || !strings.Contains(page, host) {
		t.Fatalf("/account by email code = %d without the offer to link %s (%s)", resp.StatusCode, person.Email, host)
	}
	if strings.Contains(page, w.downApp.App.Name) {
		t.Fatal("/account lists the upstream identity's app before linking")
	}
	if resp, body := w.down.PostForm(t, b, "/account/identities/link", url.Values{"identity": {upstreamUserID}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("link = %d: %.300s", resp.StatusCode, body)
	}

	_, page = get(t, b, w.down.BaseURL+"/account")
	if strings.Count(page, `data-testid="identity"`) != 2 {
		t.Errorf("/account does not list the email and the %s identity", host)
	}
	if !strings.Contains(page, w.downApp.App.Name) {
		t.Errorf("/account does not list the app the upstream identity connected")
	}

	// Tokens stay per identity: the app's access token carries the upstream subject and
	// issuer; from the email identity's session its grant is revoked, and the token with it.
	if claims.PublicSubject() != person.ID || claims.IdP != w.up.BaseURL {
		t.Errorf("the app's token says sub %q idp %q, want %q %q", claims.PublicSubject(), claims.IdP, person.ID, w.up.BaseURL)
	}
	var grant string
	if err := w.down.Store.DB().Get(&grant, `SELECT id FROM grants WHERE user_id = $1`, upstreamUserID); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, `data-testid="grant-`+grant+`"`) {
		t.Fatal("/account lacks the upstream identity's grant")
	}
	if resp, _ := w.down.PostForm(t, b, "/account/grants/"+grant+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke the upstream identity's grant = %d", resp.StatusCode)
	}
	resp, err = http.PostForm(w.down.BaseURL+oauth.PathIntrospect, url.Values{"token": {tok.AccessToken},
		"client_id": {w.gpt.ClientID}, "client_secret": {w.gpt.ClientSecret}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var in struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&in); err != nil || in.Active {
		t.Errorf("introspection after the linked revoke: active=%v (%v), want inactive", in.Active, err)
	}

	// The other way round it manages nothing: up's developer can sign anyone in as
	// person, so signed in with that identity /account shows it alone, and the email
	// identity's grant and the link itself are out of its reach (404).
	emailUser, err := w.down.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	var emailGrant string
	if err := w.down.Store.DB().Get(&emailGrant, `INSERT INTO grants (user_id, client_id, app_id, scopes) VALUES ($1, $2, $3, '{openid}') RETURNING id`,
		emailUser.ID, w.downApp.Client.ID, w.downApp.App.ID); err != nil {
		t.Fatal(err)
	}
	b2 := w.browser(t)
	w.up.Clock.Advance(time.Minute) // codes to one address are a minute apart
	upCode := w.up.RequestCode(t, b2, person.Email)
	if resp, _ := w.up.PostForm(t, b2, "/login/verify", url.Values{"email": {person.Email}, "code": {upCode}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("upstream sign-in again failed")
	}
	w.fromCallback(t, b2, w.atUpstream(t, b2, w.toUpstream(t, b2, "again")), "again")
	_, page = get(t, b2, w.down.BaseURL+"/account")
	if !strings.Contains(page, `data-testid="identities-managed-from"`) || strings.Contains(page, email) {
		t.Errorf("/account as the upstream identity does not say it is managed elsewhere, or names %s to whoever runs its provider", email)
	}
	if strings.Contains(page, `data-testid="grant-`+emailGrant+`"`) || strings.Count(page, `data-testid="identity"`) != 1 {
		t.Error("/account as the upstream identity shows the email identity's grant or identity")
	}
	for _, path := range []string{"/account/grants/" + emailGrant + "/revoke", "/account/identities/" + emailUser.ID + "/unlink"} {
		if resp, _ := w.down.PostForm(t, b2, path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s as the upstream identity = %d, want 404", path, resp.StatusCode)
		}
	}
	if g, err := w.down.Store.GrantByID(context.Background(), emailGrant); err != nil || g.RevokedAt != nil {
		t.Errorf("the email identity's grant was touched from the upstream identity (%v)", err)
	}

	// Whoever runs up cannot use that identity as a bridge: with an email identity of
	// their own that asks to link, a sign-in as person is offered nothing, and the link
	// is refused, so their identity never joins the group.
	w.up.Clock.Advance(time.Minute)
	w.down.Clock.Advance(time.Minute)
	intruder := handlertest.UniqueEmail(t, "intruder")
	b3 := w.browser(t)
	code = w.down.RequestCode(t, b3, intruder)
	if resp, _ := w.down.PostForm(t, b3, "/login/verify", url.Values{"email": {intruder}, "code": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("intruder sign-in failed")
	}
	if resp, _ := w.down.PostForm(t, b3, "/account/identities/start", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("intruder start failed")
	}
	// Signed in at down as another identity, down asks up to sign person in afresh
	// (prompt=login): up's sign-in page again, then back to up's authorization.
	upCode = w.up.RequestCode(t, b3, person.Email)
	if resp, _ := w.up.PostForm(t, b3, "/login/verify", url.Values{"email": {person.Email}, "code": {upCode}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("upstream sign-in as person failed")
	}
	resp, _ = get(t, b3, w.toUpstream(t, b3, "bridge"))
	reauth := location(t, resp)
	returnTo := mustURL(t, reauth).Query().Get("return_to")
	if !strings.HasPrefix(reauth, w.up.BaseURL+"/login?reauth=1") || returnTo == "" {
		t.Fatalf("up answered the prompt=login request with %s, want its sign-in page", reauth)
	}
	w.up.Clock.Advance(time.Minute)
	upCode = w.up.RequestCode(t, b3, person.Email)
	resp, _ = w.up.PostForm(t, b3, "/login/verify", url.Values{"email": {person.Email}, "code": {upCode}, "return_to": {returnTo}})
	w.fromCallback(t, b3, w.atUpstream(t, b3, location(t, resp)), "bridge")
	if _, page := get(t, b3, w.down.BaseURL+"/account"); strings.Contains(page, `data-testid="link-offer"`) {
		t.Error("an identity already linked into someone's group is offered a link to another identity")
	}
	intruderUser, _ := w.down.Store.UserByEmail(context.Background(), intruder)
	if resp, _ := w.down.PostForm(t, b3, "/account/identities/link", url.Values{"identity": {intruderUser.ID}}); resp.StatusCode != http.StatusConflict {
		t.Errorf("linking through the grouped identity = %d, want 409", resp.StatusCode)
	}
	if g, _ := w.down.Store.IdentityGroup(context.Background(), intruderUser.ID); len(g) != 1 {
		t.Errorf("the intruder's identity joined a group of %d", len(g))
	}
}

package connections_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/webhook"
)

// TestConnect_AnotherAuthGPTsIsTheProvider runs the whole lifecycle against a second,
// real AuthGPTs: connect (its /oauth/authorize, consent and /oauth/token, PKCE S256),
// hand-over by token exchange, disconnect revoking at its /oauth/revoke (its userinfo
// then refuses the token), and nothing of a token in our logs or pages.
func TestConnect_AnotherAuthGPTsIsTheProvider(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	prov := handlertest.New(t)
	provApp := prov.NewApp(t, handlertest.UniqueEmail(t, "provdev"), store.ClientKindGPT, w.env.BaseURL+"/connections/callback")
	p := w.addProvider(t, w.app, store.ConnectionProvider{Provider: "acme", DisplayName: "Acme",
		AuthorizeURL: prov.BaseURL + "/oauth/authorize", TokenURL: prov.BaseURL + "/oauth/token",
		RevokeURL: prov.BaseURL + "/oauth/revoke", UserinfoURL: prov.BaseURL + "/oauth/userinfo",
		ClientID: provApp.Client.ID, Scopes: []string{"openid", "email"}, PKCE: true}, provApp.Secret)

	// The developer's systems hear of the link and of the disconnection (webhooks).
	subscribeConnectionEvents(t, w)

	email := handlertest.UniqueEmail(t, "user")
	u := w.env.SignIn(t, email)
	provEmail := handlertest.UniqueEmail(t, "acmeuser")
	pu := prov.SignIn(t, provEmail)

	authURL := w.start(t, u, "acme", "")
	if got := authURL.Query().Get("code_challenge_method"); got != "S256" {
		t.Errorf("code_challenge_method = %q, want S256", got)
	}
	if st := authURL.Query().Get("state"); len(st) != 43 {
		t.Errorf("state has %d characters, want 43 (32 random bytes)", len(st))
	}
	callback := allowAt(t, prov, pu, authURL.String())
	resp, body := follow(t, u, callback)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("callback = %d → %q, want 303 to /account: %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	user := w.user(t, email)
	l := w.linked(t, p, user.ID)
	if l.Status != store.ConnectionActive || l.AccountName != provEmail || l.ExpiresAt == nil || l.RefreshSealed == nil {
		t.Fatalf("linked account = %+v, want active, named %s, expiring, with a refresh token", l, provEmail)
	}
	tok, err := w.svc.AccessToken(context.Background(), p, user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(l.AccessSealed, []byte(tok.Access)) {
		t.Fatal("the access token is stored in clear")
	}
	if st := userinfo(t, prov.BaseURL, tok.Access); st != http.StatusOK {
		t.Fatalf("provider userinfo with the linked token = %d, want 200", st)
	}

	// Hand-over by token exchange, as the developer's API runs it.
	id, secret := w.serviceClient(t, w.app)
	userTok := w.env.UserTokenFor(t, u, w.app, "")
	status, out := exchange(t, w.env.BaseURL, id, secret, exchangeForm(userTok.Access, "acme"))
	var ex struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
		TokenType       string `json:"token_type"`
		ExpiresIn       int64  `json:"expires_in"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(out), &ex) != nil || ex.AccessToken != tok.Access ||
		ex.IssuedTokenType != "urn:authgpts:connection:acme" || ex.TokenType != "Bearer" || ex.ExpiresIn <= 0 {
		t.Fatalf("token exchange = %d %s", status, out)
	}

	// /account lists it without any token.
	resp, page := w.env.Get(t, u, "/account")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Acme") || !strings.Contains(page, provEmail) {
		t.Fatalf("/account = %d, want the linked account listed: %.300s", resp.StatusCode, page)
	}
	for _, where := range map[string]string{"the account page": page, "the callback page": body, "the logs": w.env.Logs.String()} {
		if strings.Contains(where, tok.Access) || strings.Contains(where, provApp.Secret) {
			t.Fatal("a token or the provider secret appears in " + where[:0] + "output")
		}
	}

	// Disconnect revokes at the provider: its userinfo refuses the token.
	resp, _ = w.env.PostForm(t, u, "/account/linked/"+l.ID+"/disconnect", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect = %d, want 303", resp.StatusCode)
	}
	if _, err := w.env.Store.LinkedAccount(context.Background(), p.ID, user.ID); err != store.ErrNotFound {
		t.Fatalf("after disconnect: %v, want ErrNotFound", err)
	}
	if st := userinfo(t, prov.BaseURL, tok.Access); st != http.StatusUnauthorized {
		t.Fatalf("provider userinfo after disconnect = %d, want 401 (revoked)", st)
	}
	events := connectionEvents(t, w)
	if len(events) != 2 || events[0].Type != store.EventConnectionLinked || events[1].Type != store.EventConnectionRevoked ||
		!strings.Contains(events[0].Payload, `"provider": "acme"`) || !strings.Contains(events[0].Payload, user.ID) ||
		!strings.Contains(events[1].Payload, `"reason": "user"`) {
		t.Errorf("webhook events %+v, want connection.linked then connection.revoked (reason user) for acme and the user", events)
	}
	for _, ev := range events {
		if strings.Contains(ev.Payload, tok.Access) {
			t.Error("a webhook payload holds the provider token")
		}
	}
	if strings.Contains(w.env.Logs.String(), tok.Access) {
		t.Fatal("the token appears in the logs")
	}
}

// subscribeConnectionEvents gives the world's app a webhook endpoint for the connection
// events, so that they are written to the outbox.
func subscribeConnectionEvents(t *testing.T, w *world) {
	t.Helper()
	id := store.NewUUID()
	secret := webhook.NewSecret()
	sealed, err := webhook.Seal(w.env.Instance.Derived.WebhookSecrets, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.env.Store.CreateWebhookEndpoint(context.Background(), w.app.App.ID, store.NewWebhookEndpoint{ID: id,
		URL: "https://hooks.example.test/authgpts", Events: []string{store.EventConnectionLinked, store.EventConnectionRevoked},
		SecretSealed: sealed, SecretHint: webhook.SecretHint(secret)}, w.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
}

type outboxEvent struct{ Type, Payload string }

// connectionEvents returns the app's outbox events in the order they were written.
func connectionEvents(t *testing.T, w *world) []outboxEvent {
	t.Helper()
	var out []outboxEvent
	rows, err := w.env.Store.DB().Query(`SELECT type, payload FROM webhook_events WHERE app_id = $1 ORDER BY created_at, id`, w.app.App.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var e outboxEvent
		if err := rows.Scan(&e.Type, &e.Payload); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func userinfo(t *testing.T, base, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/oauth/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

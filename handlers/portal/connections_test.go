package portal_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// TestConnections_AddFromPresetAndGeneric: the section shows the callback to register,
// adds a preset with its endpoints and a generic provider with the developer's, seals
// the secret and never shows it again; bad input is a 422 that stores nothing.
func TestConnections_AddFromPresetAndGeneric(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	dev := signIn(t, env, "conn")
	ca := createApp(t, env, dev, "Linked", "https://chatgpt.com/aip/g-1/oauth/callback")
	app := appURL(ca.app)

	_, page := do(t, env, dev, http.MethodGet, app, nil, false)
	if got := inputValue(page, "connections-callback"); got != env.BaseURL+"/connections/callback" {
		t.Errorf("callback shown = %q, want %s/connections/callback", got, env.BaseURL)
	}
	const secret = "gh-client-secret-0123456789"
	resp, body := hxPost(t, env, dev, app+"/connections", url.Values{"preset": {"github"}, "client_id": {"Iv1.abc"},
		"client_secret": {secret}, "required": {"on"}, "delivery": {"header"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="connection-list"`) || !strings.Contains(body, "X-AuthGPTs-Connection-github") {
		t.Fatalf("add github = %d: %.400s", resp.StatusCode, body)
	}
	resp, body = hxPost(t, env, dev, app+"/connections", url.Values{"preset": {"generic"}, "provider": {"acme"}, "display_name": {"Acme ID"},
		"authorize_url": {"https://id.acme.example/authorize"}, "token_url": {"https://id.acme.example/token"},
		"revoke_url": {"https://id.acme.example/revoke"}, "scopes": {"read write"}, "client_id": {"acme-client"},
		"client_secret": {"acme-secret"}, "delivery": {"exchange"}, "auth_style": {"header"}, "pkce": {"on"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Acme ID") {
		t.Fatalf("add generic = %d: %.400s", resp.StatusCode, body)
	}
	ps, err := env.Store.ConnectionProvidersByApp(context.Background(), ca.app.ID)
	if err != nil || len(ps) != 2 {
		t.Fatalf("providers = %v, %v; want 2", ps, err)
	}
	gh, acme := ps[0], ps[1]
	if gh.TokenURL != "https://github.com/login/oauth/access_token" || !gh.Required || gh.Delivery != store.DeliveryHeader ||
		strings.Join(gh.Scopes, " ") != "read:user" || bytes.Contains(gh.ClientSecretSealed, []byte(secret)) {
		t.Errorf("github provider = %+v", gh)
	}
	if plain, err := env.Instance.Derived.Vault.Open(gh.KeyID, gh.ClientSecretSealed, gh.ID, store.FieldClientSecret); err != nil || string(plain) != secret {
		t.Errorf("the sealed secret opens to %q, %v", plain, err)
	}
	if acme.AuthStyle != store.AuthStyleHeader || !acme.PKCE || acme.RevokeURL != "https://id.acme.example/revoke" || acme.Delivery != store.DeliveryExchange {
		t.Errorf("generic provider = %+v", acme)
	}
	_, page = do(t, env, dev, http.MethodGet, app, nil, false)
	if strings.Contains(page, secret) || strings.Contains(page, "acme-secret") {
		t.Error("a provider secret is shown again")
	}

	tests := []struct {
		name  string
		form  url.Values
		field string
	}{
		{"duplicate name", url.Values{"preset": {"github"}, "client_id": {"x"}, "client_secret": {"y"}}, "already has a connection"},
		{"bad name", url.Values{"preset": {"github"}, "provider": {"Git Hub"}, "client_id": {"x"}, "client_secret": {"y"}}, "lowercase letters"},
		{"no preset", url.Values{"preset": {"myspace"}}, "Choose a provider."},
		{"generic over http", url.Values{"preset": {"generic"}, "provider": {"plain"}, "authorize_url": {"http://id.example/a"},
			"token_url": {"https://id.example/t"}}, "https://"},
		{"secret without client ID", url.Values{"preset": {"google"}, "client_secret": {"y"}}, "Enter both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := hxPost(t, env, dev, app+"/connections", tt.form)
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tt.field) {
				t.Errorf("POST = %d, want 422 naming %q: %.300s", resp.StatusCode, tt.field, body)
			}
			if n := countRows(t, env, `SELECT count(*) FROM connection_providers`); n != 2 {
				t.Errorf("%d providers stored, want 2", n)
			}
		})
	}

	resp, _ = hxPost(t, env, dev, app+"/connections/delete", url.Values{"provider": {"acme"}})
	if resp.StatusCode != http.StatusOK || countRows(t, env, `SELECT count(*) FROM connection_providers`) != 1 {
		t.Errorf("delete = %d, want 200 and one provider left", resp.StatusCode)
	}
	if strings.Contains(env.Logs.String(), secret) || strings.Contains(env.Logs.String(), "acme-secret") {
		t.Error("a provider secret appears in the logs")
	}
}

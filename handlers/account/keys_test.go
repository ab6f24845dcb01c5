package account_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

func hxPost(t *testing.T, env *handlertest.Env, c *http.Client, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, env.BaseURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var personalKey = regexp.MustCompile(`agk_[A-Za-z0-9_-]{43}`)

// A personal key is never wider than the user's grant, only for apps the user
// connected, shown once, stored as the keyed hash, audited, and revocable only by its user.
func TestPersonalKeys_WithinTheGrant(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	ctx := context.Background()
	email := handlertest.UniqueEmail(t, "keys-user")
	c := env.SignIn(t, email)
	u, _ := env.Store.UserByEmail(ctx, email)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT)
	other := env.NewApp(t, handlertest.UniqueEmail(t, "dev2"), store.ClientKindGPT)
	grantFor(t, env, u.ID, fx, "openid", "email")

	_, page := env.Get(t, c, "/account")
	if !strings.Contains(page, `id="personal-keys"`) || !strings.Contains(page, `data-testid="key-form-`+fx.App.ID+`"`) || strings.Contains(page, other.App.ID) {
		t.Fatalf("the account page offers keys for the wrong apps")
	}
	for _, b := range []struct {
		form   url.Values
		status int
		field  string
	}{
		{url.Values{"app": {fx.App.ID}, "name": {"wide"}, "scope": {"openid", "profile"}}, 422, "scope"}, // profile not granted
		{url.Values{"app": {fx.App.ID}, "name": {""}, "scope": {"openid"}}, 422, "name"},
		{url.Values{"app": {fx.App.ID}, "name": {"x"}, "expires_in_days": {"-1"}}, 422, "expires"},
		{url.Values{"app": {other.App.ID}, "name": {"x"}, "scope": {"openid"}}, 404, ""}, // not connected
		{url.Values{"app": {"nope"}, "name": {"x"}}, 404, ""},
	} {
		resp, body := hxPost(t, env, c, "/account/keys", b.form)
		if resp.StatusCode != b.status || b.field != "" && !strings.Contains(body, `id="pk-`+fx.App.ID+`-`+b.field+`-error"`) {
			t.Errorf("%v = %d, want %d with a %q error; body: %.300s", b.form, resp.StatusCode, b.status, b.field, body)
		}
	}
	var n int
	_ = env.Store.DB().Get(&n, `SELECT count(*) FROM api_keys`)
	if n != 0 {
		t.Fatalf("bad input wrote %d keys", n)
	}

	resp, body := hxPost(t, env, c, "/account/keys", url.Values{"app": {fx.App.ID}, "name": {"my script"}, "scope": {"email"}})
	key := personalKey.FindString(body)
	if resp.StatusCode != 200 || key == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create = %d; body: %.400s", resp.StatusCode, body)
	}
	keys, err := env.Store.PersonalKeysByUser(ctx, []string{u.ID})
	if err != nil || len(keys) != 1 || keys[0].AppID != fx.App.ID || strings.Join(keys[0].Scopes, " ") != "email" {
		t.Fatalf("keys = %+v, %v", keys, err)
	}
	st, err := env.Store.APIKeyByHash(ctx, env.Hasher().Hash(key))
	if err != nil || st.ID != keys[0].ID || st.UserID != u.ID || !st.Usable(fx.App.ID, env.Clock.Now()) {
		t.Fatalf("lookup by keyed hash = %+v, %v", st, err)
	}
	_, page = env.Get(t, c, "/account")
	if strings.Contains(page, key) {
		t.Error("the account page shows the key again")
	}

	// Another user cannot revoke it.
	otherUser := env.SignIn(t, handlertest.UniqueEmail(t, "other-user"))
	if resp, _ := hxPost(t, env, otherUser, "/account/keys/revoke", url.Values{"key": {keys[0].ID}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another user's revoke = %d, want 404", resp.StatusCode)
	}
	if resp, body := hxPost(t, env, c, "/account/keys/revoke", url.Values{"key": {keys[0].ID}}); resp.StatusCode != 200 || !strings.Contains(body, "Revoked") {
		t.Errorf("revoke = %d; body: %.300s", resp.StatusCode, body)
	}
	st, _ = env.Store.APIKeyByHash(ctx, env.Hasher().Hash(key))
	if st.Usable(fx.App.ID, env.Clock.Now()) {
		t.Error("a revoked key is still usable")
	}
	var acts []string
	_ = env.Store.DB().Select(&acts, `SELECT action || ':' || (details->>'kind') FROM audit_log WHERE actor_id = $1 AND action LIKE 'api_key.%' ORDER BY id`, u.ID)
	if strings.Join(acts, ",") != "api_key.created:personal,api_key.revoked:personal" {
		t.Errorf("audit = %v", acts)
	}
	var audit string
	_ = env.Store.DB().Get(&audit, `SELECT string_agg(details::text, ' ') FROM audit_log`)
	if strings.Contains(audit, key) {
		t.Error("the key is in the audit log")
	}
}

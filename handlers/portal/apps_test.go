package portal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

func TestCreateApp_SetupPageShowsValuesAndStoresOnlyTheHash(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "create")
	ctx := context.Background()

	resp, body := do(t, env, d, http.MethodPost, "/dashboard/apps", url.Values{
		"name": {"  Weather API "}, "callback_url": {"https://chatgpt.com/aip/g-123/oauth/callback"},
	}, false)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /dashboard/apps = %d, want 200 with the setup page; body: %.300s", resp.StatusCode, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store on a page showing a secret", cc)
	}
	want := map[string]string{
		"setup-authorization-url": env.BaseURL + "/oauth/authorize",
		"setup-token-url":         env.BaseURL + "/oauth/token",
		"setup-scope":             "openid email profile",
		"setup-token-method":      "Default (POST request)",
		"setup-server-url":        env.BaseURL + "/gw/weather-api",
	}
	for id, w := range want {
		if got := inputValue(body, id); got != w {
			t.Errorf("#%s = %q, want %q", id, got, w)
		}
	}
	clientID, secret := inputValue(body, "setup-client-id"), inputValue(body, "setup-client-secret")
	if !strings.HasPrefix(clientID, "agpt_") || !strings.HasPrefix(secret, "agsec_") || len(secret) < 40 {
		t.Fatalf("client ID %q or secret (len %d) lacks its prefix or entropy", clientID, len(secret))
	}
	if !strings.Contains(body, "shown only this once") || !strings.Contains(body, `data-copy="#setup-client-secret"`) {
		t.Error("the setup page lacks the shown-once warning or the secret's copy button")
	}

	// Rows: the app, its three built-in scopes, one GPT client with the callback, and a
	// secret stored only as the token endpoint's keyed hash.
	a, err := env.Store.AppBySlugForOwner(ctx, d.user.ID, "weather-api")
	if err != nil || a.Name != "Weather API" || a.AccessTokenTTLSeconds != 3600 || a.RefreshTokenTTLSeconds != 30*86400 {
		t.Fatalf("app row = %+v, %v", a, err)
	}
	scopes, _ := env.Store.ScopesByApp(ctx, a.ID)
	if len(scopes) != 3 {
		t.Errorf("scopes = %v, want the 3 built-ins", scopes)
	}
	cl, err := env.Store.ClientByID(ctx, clientID)
	if err != nil || cl.AppID != a.ID || cl.Kind != store.ClientKindGPT || !slices.Equal([]string(cl.RedirectURIs), []string{"https://chatgpt.com/aip/g-123/oauth/callback"}) {
		t.Fatalf("client row = %+v, %v", cl, err)
	}
	secrets, _ := env.Store.ActiveSecrets(ctx, clientID, env.Clock.Now())
	if len(secrets) != 1 || !env.Hasher().Equal(secret, secrets[0].Hash) || !strings.HasSuffix(secret, strings.TrimPrefix(secrets[0].Hint, "…")) {
		t.Fatalf("stored secrets = %d; want one keyed hash of the secret shown", len(secrets))
	}
	if n := countRows(t, env, `SELECT count(*) FROM client_secrets WHERE position($1::bytea IN secret_hash) > 0`, []byte(secret)); n != 0 {
		t.Error("the clear secret is stored")
	}
	if got := auditActions(t, env, d.user.ID); !slices.Equal(got, []string{"user.signed_up", "app.created"}) {
		t.Errorf("audit = %v, want sign-up then app.created", got)
	}
	var ip string
	_ = env.Store.DB().Get(&ip, `SELECT ip FROM audit_log WHERE action = 'app.created'`)
	if ip != "127.0.0.1" {
		t.Errorf("audit IP = %q, want 127.0.0.1", ip)
	}
	if strings.Contains(auditText(t, env), secret) || strings.Contains(env.Logs.String(), secret) {
		t.Error("the client secret is in the audit log or the server log")
	}

	// The dashboard lists it; the app page shows the values again, without the secret.
	_, dash := do(t, env, d, http.MethodGet, "/dashboard", nil, false)
	if !strings.Contains(dash, `data-testid="app-row"`) || !strings.Contains(dash, "weather-api") || !strings.Contains(dash, "1 client") {
		t.Error("the dashboard does not list the new app with its slug and client count")
	}
	_, page := do(t, env, d, http.MethodGet, "/dashboard/apps/weather-api", nil, false)
	if inputValue(page, "connect-client-id") != clientID || strings.Contains(page, secret) {
		t.Error("the app page must show the client ID and never the secret")
	}
}

func TestCreateApp_HTMXReplacesTheBody(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "hx")
	resp, body := hxPost(t, env, d, "/dashboard/apps", url.Values{"name": {"Hx"}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("HX-Retarget") != "body" || !strings.HasPrefix(resp.Header.Get("HX-Reswap"), "innerHTML") {
		t.Fatalf("htmx create = %d, HX-Retarget %q; want the setup page swapped into the body", resp.StatusCode, resp.Header.Get("HX-Retarget"))
	}
	if !strings.Contains(body, `data-testid="setup-page"`) || !strings.Contains(body, `hx-history="false"`) {
		t.Error("the setup page must be kept out of htmx's history cache")
	}
}

func TestCreateApp_InvalidFormIs422WithValuesKeptAndNothingWritten(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "invalid")
	tests := []struct {
		name     string
		form     url.Values
		htmx     bool
		wantMsgs []string
	}{
		{"empty name", url.Values{"name": {"  "}}, true, []string{"Enter a name for the app."}},
		{"http callback", url.Values{"name": {"A"}, "callback_url": {"http://evil.example/cb"}}, true, []string{"must use https"}},
		{"fragment", url.Values{"name": {"A"}, "callback_url": {"https://a.example/cb#x"}}, true, []string{"fragment"}},
		{"wildcard", url.Values{"name": {"A"}, "callback_url": {"https://*.example.com/cb"}}, true, []string{"wildcard"}},
		{"relative", url.Values{"name": {"A"}, "callback_url": {"/cb"}}, true, []string{"https://"}},
		{"too long name", url.Values{"name": {strings.Repeat("n", 101)}}, false, []string{"under 101 characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, env, d, http.MethodPost, "/dashboard/apps", tt.form, tt.htmx)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422", resp.StatusCode)
			}
			for _, m := range tt.wantMsgs {
				if !strings.Contains(body, m) {
					t.Errorf("body lacks %q", m)
				}
			}
			if !strings.Contains(body, `id="new-app-form"`) || !strings.Contains(body, `data-testid="field-error"`) {
				t.Error("the answer is not the form with its field error")
			}
			if cb := tt.form.Get("callback_url"); cb != "" && inputValue(body, "app-callback") != cb {
				t.Errorf("callback value = %q, want it kept", inputValue(body, "app-callback"))
			}
			isPage := strings.Contains(body, "<html")
			if isPage == tt.htmx {
				t.Errorf("full page = %v for htmx = %v; want a partial for htmx and a page otherwise", isPage, tt.htmx)
			}
		})
	}
	if n := countRows(t, env, `SELECT count(*) FROM apps`); n != 0 {
		t.Errorf("apps = %d after refused forms, want 0", n)
	}
	if got := auditActions(t, env, d.user.ID); len(got) != 1 {
		t.Errorf("audit = %v, want only the sign-up", got)
	}
}

func settingsForm(a store.App) url.Values {
	return url.Values{
		"name": {a.Name}, "slug": {a.Slug}, "upstream_url": {a.UpstreamURL},
		"access_ttl_minutes": {"60"}, "refresh_ttl_days": {"30"},
		"credits_per_call": {"1"}, "free_credits": {"0"}, "rate_limit_per_minute": {"60"},
	}
}

func TestAppSettings_SaveAnswersTheRegionAndAudits(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "settings")
	ca := createApp(t, env, d, "Weather", "")
	form := settingsForm(ca.app)
	form.Set("name", "Weather Pro")
	form.Set("upstream_url", "https://api.example.com/v1")
	form.Set("access_ttl_minutes", "15")
	form.Set("refresh_ttl_days", "7")
	form.Set("metering_enabled", "on")
	form.Set("credits_per_call", "3")
	form.Set("free_credits", "100")
	form.Set("rate_limit_per_minute", "20")
	form.Set("mcp_enabled", "on")

	resp, body := hxPost(t, env, d, appURL(ca.app)+"/settings", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("save = %d; body %.300s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(strings.TrimSpace(body), `<section id="app-settings"`) || strings.Contains(body, "<html") {
		t.Errorf("answer is not the #app-settings region: %.120s", body)
	}
	if !strings.Contains(body, `id="app-header" class="mt-3" hx-swap-oob="true"`) || !strings.Contains(body, `id="connect-panel"`) {
		t.Error("the header and connect panel are not refreshed out of band")
	}
	if !strings.Contains(body, `data-testid="settings-saved"`) || inputValue(body, "connect-mcp-url") != env.BaseURL+"/gw/weather/mcp" {
		t.Error("the answer lacks the saved note or the MCP URL")
	}
	a, _ := env.Store.AppByID(context.Background(), ca.app.ID)
	want := store.AppSettings{Name: "Weather Pro", Slug: "weather", UpstreamURL: "https://api.example.com/v1",
		AccessTokenTTLSeconds: 900, RefreshTokenTTLSeconds: 7 * 86400, MeteringEnabled: true,
		CreditsPerCall: 3, FreeCredits: 100, RateLimitPerMinute: 20, MCPEnabled: true}
	if a.Settings() != want {
		t.Errorf("settings row = %+v, want %+v", a.Settings(), want)
	}
	var details json.RawMessage
	if err := env.Store.DB().Get(&details, `SELECT details FROM audit_log WHERE action = 'app.updated'`); err != nil {
		t.Fatalf("no app.updated audit row: %v", err)
	}
	var got struct{ Changed []string }
	_ = json.Unmarshal(details, &got)
	if len(got.Changed) != 9 || slices.Contains(got.Changed, "slug") {
		t.Errorf("audited changes = %v, want the 9 changed settings", got.Changed)
	}
}

func TestAppSettings_InvalidIs422WithValuesKeptAndNothingSaved(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "badsettings")
	ca := createApp(t, env, d, "Weather", "")
	tests := []struct {
		field, value, wantMsg string
	}{
		{"name", "", "Enter a name"},
		{"slug", "Bad Slug!", "lowercase letters"},
		{"slug", "-edge", "lowercase letters"},
		{"upstream_url", "http://api.example.com", "must use https"},
		{"upstream_url", "http://127.0.0.1:9000", "development mode"},
		{"upstream_url", "https://user:pw@api.example.com", "user name or password"},
		{"upstream_url", "ftp://api.example.com", "must use https"},
		{"upstream_url", "api.example.com", "absolute URL"},
		{"access_ttl_minutes", "0", "minutes from 1 to 43200"},
		{"access_ttl_minutes", "43201", "minutes from 1 to 43200"},
		{"refresh_ttl_days", "366", "days from 1 to 365"},
		{"refresh_ttl_days", "1.5", "days from 1 to 365"},
		{"credits_per_call", "-1", "0 or more"},
		{"free_credits", "lots", "0 or more"},
		{"rate_limit_per_minute", "-5", "0 (no limit) or more"},
	}
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.value, func(t *testing.T) {
			form := settingsForm(ca.app)
			form.Set("name", "Renamed")
			form.Set(tt.field, tt.value)
			resp, body := hxPost(t, env, d, appURL(ca.app)+"/settings", form)
			if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tt.wantMsg) {
				t.Fatalf("status %d, want 422 with %q", resp.StatusCode, tt.wantMsg)
			}
			if !strings.Contains(body, `id="app-settings"`) || strings.Contains(body, "<html") {
				t.Error("the answer is not the settings region")
			}
			if tt.field != "name" && inputValue(body, "settings-name") != "Renamed" {
				t.Error("the other values typed are not kept")
			}
		})
	}
	a, _ := env.Store.AppByID(context.Background(), ca.app.ID)
	if a.Settings() != ca.app.Settings() {
		t.Errorf("settings changed after refused forms: %+v", a.Settings())
	}
	if slices.Contains(auditActions(t, env, d.user.ID), "app.updated") {
		t.Error("a refused form wrote an audit row")
	}
}

// TestAppSettings_TakenSlugIs422AndNoSettingIsHalfSaved: the slug is refused by the
// database's unique index inside the transaction that also changes the other fields;
// none of them may stick.
func TestAppSettings_TakenSlugIs422AndNoSettingIsHalfSaved(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "slug")
	other := signIn(t, env, "slugother")
	mine := createApp(t, env, d, "Mine", "")
	createApp(t, env, other, "Taken", "")

	form := settingsForm(mine.app)
	form.Set("slug", "taken")
	form.Set("name", "Renamed")
	form.Set("rate_limit_per_minute", "5")
	resp, body := hxPost(t, env, d, appURL(mine.app)+"/settings", form)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Another app already uses the slug") {
		t.Fatalf("taken slug = %d, want 422 with a clear message; body %.300s", resp.StatusCode, body)
	}
	if inputValue(body, "settings-slug") != "taken" || inputValue(body, "settings-name") != "Renamed" {
		t.Error("the typed values are not kept")
	}
	a, _ := env.Store.AppByID(context.Background(), mine.app.ID)
	if a.Settings() != mine.app.Settings() {
		t.Errorf("settings after the refused change = %+v, want unchanged", a.Settings())
	}
	if slices.Contains(auditActions(t, env, d.user.ID), "app.updated") {
		t.Error("the refused change was audited")
	}
}

func TestAppSettings_NewSlugMovesThePage(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "move")
	ca := createApp(t, env, d, "Weather", "")
	form := settingsForm(ca.app)
	form.Set("slug", "forecast")
	resp, body := hxPost(t, env, d, appURL(ca.app)+"/settings", form)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("HX-Push-Url") != "/dashboard/apps/forecast" || resp.Header.Get("HX-Retarget") != "body" {
		t.Fatalf("slug change = %d, HX-Push-Url %q; want the whole page at its new URL", resp.StatusCode, resp.Header.Get("HX-Push-Url"))
	}
	if inputValue(body, "connect-server-url") != env.BaseURL+"/gw/forecast" {
		t.Errorf("server URL = %q, want the new gateway URL", inputValue(body, "connect-server-url"))
	}
	if r, _ := do(t, env, d, http.MethodGet, "/dashboard/apps/weather", nil, false); r.StatusCode != http.StatusNotFound {
		t.Errorf("old URL = %d, want 404", r.StatusCode)
	}
	// Without htmx: a 303 to the new page.
	form.Set("slug", "forecast-2")
	r, _ := do(t, env, d, http.MethodPost, "/dashboard/apps/forecast/settings", form, false)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/dashboard/apps/forecast-2" {
		t.Errorf("plain slug change = %d to %q, want 303 to the new page", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestAppSettings_LoopbackHTTPUpstreamOnlyInDevelopment(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t, func(d *handlers.Config) { d.DevMode = true })
	d := signIn(t, env, "dev")
	ca := createApp(t, env, d, "Local", "")
	form := settingsForm(ca.app)
	form.Set("upstream_url", "http://127.0.0.1:9000/api")
	if resp, body := hxPost(t, env, d, appURL(ca.app)+"/settings", form); resp.StatusCode != http.StatusOK {
		t.Fatalf("loopback upstream in development = %d; %.300s", resp.StatusCode, body)
	}
	form.Set("upstream_url", "http://api.example.com")
	if resp, _ := hxPost(t, env, d, appURL(ca.app)+"/settings", form); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("non-loopback http upstream in development = %d, want 422", resp.StatusCode)
	}
	a, _ := env.Store.AppByID(context.Background(), ca.app.ID)
	if a.UpstreamURL != "http://127.0.0.1:9000/api" {
		t.Errorf("upstream = %q", a.UpstreamURL)
	}
}

func TestDeleteApp_NeedsTheTypedSlug(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "delete")
	ca := createApp(t, env, d, "Doomed", "")
	resp, body := hxPost(t, env, d, appURL(ca.app)+"/delete", url.Values{"confirm_slug": {"doome"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="danger-zone"`) || inputValue(body, "confirm-slug") != "doome" {
		t.Fatalf("wrong slug = %d, want 422 with the danger zone and the value kept", resp.StatusCode)
	}
	if _, err := env.Store.AppByID(context.Background(), ca.app.ID); err != nil {
		t.Fatalf("the app is gone after a wrong confirmation: %v", err)
	}
	resp, _ = hxPost(t, env, d, appURL(ca.app)+"/delete", url.Values{"confirm_slug": {"doomed"}})
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("HX-Redirect") != "/dashboard" {
		t.Fatalf("delete = %d, HX-Redirect %q; want /dashboard", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
	if n := countRows(t, env, `SELECT count(*) FROM apps`) + countRows(t, env, `SELECT count(*) FROM clients`) + countRows(t, env, `SELECT count(*) FROM client_secrets`); n != 0 {
		t.Errorf("%d app, client or secret rows remain", n)
	}
	if got := auditActions(t, env, d.user.ID); got[len(got)-1] != "app.deleted" {
		t.Errorf("audit = %v, want app.deleted last", got)
	}
}

func TestScopes_AddToggleEditDelete(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "scopes")
	ca := createApp(t, env, d, "Scoped", "")
	base := appURL(ca.app)
	ctx := context.Background()

	invalid := []struct{ name, desc, want string }{
		{"has space", "x", "without spaces"},
		{`quo"te`, "x", "without spaces"},
		{"back\\slash", "x", "without spaces"},
		{"", "x", "Enter the scope"},
		{strings.Repeat("s", 65), "x", "64 characters"},
		{"ok:scope", "", "consent page"},
		{"openid", "dup", "already has a scope named"},
	}
	for _, tt := range invalid {
		resp, body := hxPost(t, env, d, base+"/scopes", url.Values{"name": {tt.name}, "description": {tt.desc}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, tt.want) || !strings.Contains(body, `id="scope-list"`) {
			t.Errorf("add scope %q = %d, want 422 with %q", tt.name, resp.StatusCode, tt.want)
		}
		if tt.name != "" && inputValue(body, "scope-name") != tt.name {
			t.Errorf("add scope %q: the typed name is not kept", tt.name)
		}
	}
	if scopes, _ := env.Store.ScopesByApp(ctx, ca.app.ID); len(scopes) != 3 {
		t.Fatalf("scopes after refused forms = %d, want 3", len(scopes))
	}

	resp, body := hxPost(t, env, d, base+"/scopes", url.Values{"name": {"forecast:read"}, "description": {"Read your forecasts"}, "is_default": {"on"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-scope="forecast:read"`) {
		t.Fatalf("add scope = %d", resp.StatusCode)
	}
	if inputValue(body, "connect-scope") != "openid email profile forecast:read" {
		t.Errorf("connect panel scope = %q, want the new default appended", inputValue(body, "connect-scope"))
	}
	// Toggle off, edit the description, then try an overlong one.
	hxPost(t, env, d, base+"/scopes/update", url.Values{"name": {"forecast:read"}, "description": {"Read your forecasts"}})
	hxPost(t, env, d, base+"/scopes/update", url.Values{"name": {"forecast:read"}, "description": {"See saved forecasts"}})
	resp, _ = hxPost(t, env, d, base+"/scopes/update", url.Values{"name": {"forecast:read"}, "description": {strings.Repeat("d", 301)}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("overlong description = %d, want 422", resp.StatusCode)
	}
	// A built-in: its default flag changes, its description does not.
	hxPost(t, env, d, base+"/scopes/update", url.Values{"name": {"profile"}, "description": {"pwned"}})
	scopes, _ := env.Store.ScopesByApp(ctx, ca.app.ID)
	want := []store.Scope{
		{AppID: ca.app.ID, Name: "openid", Description: "Confirm who you are", Builtin: true, IsDefault: true},
		{AppID: ca.app.ID, Name: "email", Description: "See your email address", Builtin: true, IsDefault: true},
		{AppID: ca.app.ID, Name: "profile", Description: "See your basic profile", Builtin: true, IsDefault: false},
		{AppID: ca.app.ID, Name: "forecast:read", Description: "See saved forecasts", IsDefault: false},
	}
	if !slices.Equal(scopes, want) {
		t.Errorf("scopes = %+v\nwant %+v", scopes, want)
	}

	resp, body = hxPost(t, env, d, base+"/scopes/delete", url.Values{"name": {"openid"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"detail"`) || !strings.Contains(body, "Built-in scopes cannot be deleted") {
		t.Errorf("delete openid = %d %s, want 400 in the portal JSON shape", resp.StatusCode, body)
	}
	if resp, _ := hxPost(t, env, d, base+"/scopes/delete", url.Values{"name": {"nope"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("delete unknown scope = %d, want 404", resp.StatusCode)
	}
	if resp, _ := hxPost(t, env, d, base+"/scopes/delete", url.Values{"name": {"forecast:read"}}); resp.StatusCode != http.StatusOK {
		t.Errorf("delete custom scope = %d, want 200", resp.StatusCode)
	}
	if scopes, _ := env.Store.ScopesByApp(ctx, ca.app.ID); len(scopes) != 3 || scopes[0].Name != "openid" {
		t.Errorf("scopes after deletes = %v, want the 3 built-ins", scopes)
	}
	got := auditActions(t, env, d.user.ID)
	wantAudit := []string{"user.signed_up", "app.created", "scope.created", "scope.updated", "scope.updated", "scope.updated", "scope.deleted"}
	if !slices.Equal(got, wantAudit) {
		t.Errorf("audit = %v, want %v", got, wantAudit)
	}
}

package portal_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
)

// snapshot is everything a developer's routes can change, to prove another developer
// changed nothing.
func snapshot(t *testing.T, env *handlertest.Env) string {
	t.Helper()
	var rows []string
	for _, q := range []string{
		`SELECT row_to_json(a)::text FROM (SELECT id, slug, name, upstream_url, access_token_ttl_seconds, refresh_token_ttl_seconds, metering_enabled, credits_per_call, free_credits, rate_limit_per_minute, mcp_enabled, updated_at FROM apps ORDER BY id) a`,
		`SELECT row_to_json(s)::text FROM (SELECT app_id, name, description, is_default FROM app_scopes ORDER BY app_id, name) s`,
		`SELECT row_to_json(c)::text FROM (SELECT id, name, kind, redirect_uris, updated_at FROM clients ORDER BY id) c`,
		`SELECT row_to_json(x)::text FROM (SELECT id, client_id, expires_at FROM client_secrets ORDER BY id) x`,
		`SELECT row_to_json(p)::text FROM (SELECT id, app_id, provider, client_id, scopes, required, delivery FROM connection_providers ORDER BY id) p`,
		`SELECT row_to_json(w)::text FROM (SELECT id, url, events, secret_hint, previous_until, disabled_at, updated_at FROM webhook_endpoints ORDER BY id) w`,
		`SELECT row_to_json(d)::text FROM (SELECT id, state, next_attempt_at FROM webhook_deliveries ORDER BY id) d`,
		`SELECT row_to_json(s)::text FROM (SELECT app_id, credits_low_threshold FROM webhook_settings ORDER BY app_id) s`,
	} {
		var part []string
		if err := env.Store.DB().Select(&part, q); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, part...)
	}
	return strings.Join(rows, "\n")
}

// TestOwnerIsolation_AnotherDeveloperGets404OnEveryRoute: every app and client route,
// by GET and by POST, plain and through htmx, with valid input, answers 404 to a signed-in
// developer who does not own the app, and changes nothing. The owner gets the same
// routes to work, so the 404s come from the owner rule, not from a missing route.
func TestOwnerIsolation_AnotherDeveloperGets404OnEveryRoute(t *testing.T) {
	t.Parallel()
	rc := handlertest.NewWebhookReceiver(t)
	env := handlertest.New(t, rc.Option())
	owner := signIn(t, env, "owner")
	intruder := signIn(t, env, "intruder")
	ca := createApp(t, env, owner, "Private", "https://chatgpt.com/aip/g-1/oauth/callback")
	epID, _ := addWebhook(t, env, owner, ca.app, rc.URL, "user.connected")
	hxPost(t, env, owner, appURL(ca.app)+"/webhooks/"+epID+"/test", url.Values{})
	rc.Wait(t)
	waitAttempts(t, env, epID, 1)
	attempts, err := env.Store.WebhookAttempts(context.Background(), epID, 1, 10)
	if err != nil || len(attempts) != 1 {
		t.Fatal(attempts, err)
	}
	hxPost(t, env, owner, appURL(ca.app)+"/scopes", url.Values{"name": {"private:read"}, "description": {"Private"}, "is_default": {"on"}})
	hxPost(t, env, owner, appURL(ca.app)+"/connections", url.Values{"preset": {"github"}, "client_id": {"Iv1.owner"}, "client_secret": {"owner-secret"}})
	// The intruder has an app of their own: the owner's client under the intruder's
	// app must be refused too.
	theirs := createApp(t, env, intruder, "Theirs", "")

	app, client := appURL(ca.app), clientURL(ca.app, ca.client)
	hook := app + "/webhooks/" + epID
	routes := []struct {
		path string
		form url.Values // valid input for the owner
	}{
		{app, nil},
		{app + "/settings", settingsForm(ca.app)},
		{app + "/delete", url.Values{"confirm_slug": {ca.app.Slug}}},
		{app + "/scopes", url.Values{"name": {"stolen"}, "description": {"Stolen"}}},
		{app + "/scopes/update", url.Values{"name": {"private:read"}, "description": {"Mine now"}}},
		{app + "/scopes/delete", url.Values{"name": {"private:read"}}},
		{app + "/clients", url.Values{"name": {"Backdoor"}, "kind": {"gpt"}}},
		{app + "/connections", url.Values{"preset": {"google"}, "provider": {"stolen"}, "client_id": {"x"}, "client_secret": {"y"}}},
		{app + "/connections/delete", url.Values{"provider": {"github"}}},
		{app + "/webhooks", url.Values{"webhook_url": {rc.URL + "/stolen"}, "events": {"user.connected"}}},
		{app + "/webhooks/threshold", url.Values{"credits_low_threshold": {"7"}}},
		{hook, nil},
		{hook + "/test", url.Values{}},
		{hook + "/rotate", url.Values{}},
		{hook + "/enable", url.Values{}},
		{hook + "/deliveries/" + attempts[0].DeliveryID + "/resend", url.Values{}},
		{hook + "/delete", url.Values{}},
		{client, nil},
		{client + "/name", url.Values{"name": {"Hijacked"}}},
		{client + "/redirect-uris", url.Values{"redirect_uri": {"https://evil.example/cb"}}},
		{client + "/redirect-uris/presets", url.Values{"preset": {"gpt"}, "gpt_id": {"g-evil"}}},
		{client + "/redirect-uris/delete", url.Values{"redirect_uri": {"https://chatgpt.com/aip/g-1/oauth/callback"}}},
		{client + "/secret", url.Values{"overlap": {"0"}}},
		{client + "/delete", url.Values{}},
		// The owner's client through the intruder's own app.
		{appURL(theirs.app) + "/clients/" + ca.client.ID, nil},
		{appURL(theirs.app) + "/clients/" + ca.client.ID + "/secret", url.Values{"overlap": {"0"}}},
		{appURL(theirs.app) + "/clients/" + ca.client.ID + "/delete", url.Values{}},
		// The owner's endpoint through the intruder's own app.
		{appURL(theirs.app) + "/webhooks/" + epID, nil},
		{appURL(theirs.app) + "/webhooks/" + epID + "/rotate", url.Values{}},
		{appURL(theirs.app) + "/webhooks/" + epID + "/deliveries/" + attempts[0].DeliveryID + "/resend", url.Values{}},
	}
	const viaTheirs = 6 // the routes above through the intruder's app, which the owner does not use
	before := snapshot(t, env)
	for _, r := range routes {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			for _, htmx := range []bool{false, true} {
				form := r.form
				if method == http.MethodPost && form == nil {
					form = url.Values{}
				}
				if method == http.MethodGet {
					form = nil
				}
				resp, body := do(t, env, intruder, method, r.path, form, htmx)
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("intruder %s %s (htmx %v) = %d, want 404", method, r.path, htmx, resp.StatusCode)
					continue
				}
				if htmx {
					var e struct{ Detail struct{ Message string } }
					if err := json.Unmarshal([]byte(body), &e); err != nil || e.Detail.Message == "" {
						t.Errorf("intruder htmx %s %s: body %q is not the portal JSON error", method, r.path, body)
					}
				} else if strings.Contains(body, ca.app.Name) || strings.Contains(body, ca.client.ID) {
					t.Errorf("intruder %s %s: the 404 page names the owner's app or client", method, r.path)
				}
			}
		}
	}
	if after := snapshot(t, env); after != before {
		t.Errorf("the intruder's requests changed the owner's data:\nbefore %s\nafter  %s", before, after)
	}
	intruderAudit := auditActions(t, env, intruder.user.ID)
	if len(intruderAudit) != 2 { // signed up, created their own app
		t.Errorf("intruder audit = %v, want only their sign-up and their own app", intruderAudit)
	}

	// The owner reaches every route of their app (deletions last).
	for _, r := range routes[:len(routes)-viaTheirs] {
		method := http.MethodGet
		if r.form != nil {
			method = http.MethodPost
		}
		if strings.HasSuffix(r.path, "/delete") && !strings.Contains(r.path, "/scopes/") && !strings.Contains(r.path, "/redirect-uris/") &&
			!strings.Contains(r.path, "/connections/") {
			continue
		}
		if resp, body := do(t, env, owner, method, r.path, r.form, true); resp.StatusCode >= 300 {
			t.Errorf("owner %s %s = %d, want success; body %.200s", method, r.path, resp.StatusCode, body)
		}
	}
	for _, path := range []string{client + "/delete", app + "/delete"} {
		form := url.Values{}
		if strings.HasPrefix(path, app+"/delete") {
			form.Set("confirm_slug", ca.app.Slug)
		}
		if resp, _ := do(t, env, owner, http.MethodPost, path, form, true); resp.StatusCode != http.StatusNoContent {
			t.Errorf("owner POST %s = %d, want 204 with HX-Redirect", path, resp.StatusCode)
			for _, line := range strings.Split(env.Logs.String(), "\n") {
				if strings.Contains(line, "ERROR") || strings.Contains(line, "\"status\":500") {
					t.Log(line)
				}
			}
		}
	}
	if _, err := env.Store.AppByID(context.Background(), ca.app.ID); err == nil {
		t.Error("the owner could not delete their app")
	}
}

func TestDashboard_ListsOnlyTheDevelopersApps(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	a := signIn(t, env, "lista")
	b := signIn(t, env, "listb")
	createApp(t, env, a, "Alpha Service", "")
	createApp(t, env, b, "Beta Service", "")
	_, body := do(t, env, a, http.MethodGet, "/dashboard", nil, false)
	if !strings.Contains(body, "Alpha Service") || strings.Contains(body, "Beta Service") {
		t.Error("the dashboard must list the developer's own apps only")
	}
	_, body = do(t, env, b, http.MethodGet, "/dashboard", nil, false)
	if strings.Contains(body, "Alpha Service") || !strings.Contains(body, "Beta Service") {
		t.Error("the dashboard must list the developer's own apps only")
	}
}

func TestPortal_RequiresSignIn(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	c := env.Client()
	for _, path := range []string{"/dashboard", "/dashboard/apps/x", "/dashboard/apps/x/clients/agpt_x"} {
		resp, _ := env.Get(t, c, path)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?return_to=") {
			t.Errorf("GET %s signed out = %d to %q, want 303 to /login", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, _ := env.PostForm(t, c, "/dashboard/apps", url.Values{"name": {"x"}})
	if resp.StatusCode == http.StatusOK || countRows(t, env, `SELECT count(*) FROM apps`) != 0 {
		t.Errorf("POST /dashboard/apps signed out = %d and created an app", resp.StatusCode)
	}
}

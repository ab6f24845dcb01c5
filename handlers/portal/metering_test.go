package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
)

func TestRoutePrices_AddDeleteAndFieldErrors(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "prices")
	ca := createApp(t, env, d, "Priced", "")
	path := appURL(ca.app) + "/prices"
	count := func() int { return countRows(t, env, `SELECT count(*) FROM route_prices WHERE app_id = $1`, ca.app.ID) }

	resp, body := hxPost(t, env, d, path, url.Values{"method": {"post"}, "pattern": {"/v1/chat/completions"}, "credits": {"25"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="prices"`) || !strings.Contains(body, `data-pattern="/v1/chat/completions"`) {
		t.Fatalf("add = %d; body: %.400s", resp.StatusCode, body)
	}
	if !strings.Contains(body, `id="connect-panel"`) || !strings.Contains(body, `hx-swap-oob="true"`) {
		t.Error("the GPT setup panel is not refreshed out of band")
	}

	bad := []struct {
		form  url.Values
		field string
	}{
		{url.Values{"method": {"*"}, "pattern": {"v1/x"}, "credits": {"1"}}, "pattern"},
		{url.Values{"method": {"*"}, "pattern": {"/v1/../admin"}, "credits": {"1"}}, "pattern"},
		{url.Values{"method": {"*"}, "pattern": {"/v1/**/x"}, "credits": {"1"}}, "pattern"},
		{url.Values{"method": {"*"}, "pattern": {"/v1/a*b"}, "credits": {"1"}}, "pattern"},
		{url.Values{"method": {"*"}, "pattern": {""}, "credits": {"1"}}, "pattern"},
		{url.Values{"method": {"*"}, "pattern": {"/x"}, "credits": {"-3"}}, "credits"},
		{url.Values{"method": {"*"}, "pattern": {"/x"}, "credits": {"1.5"}}, "credits"},
		{url.Values{"method": {"*"}, "pattern": {"/x"}, "credits": {"99999999999999999999"}}, "credits"},
		{url.Values{"method": {"G3T"}, "pattern": {"/x"}, "credits": {"1"}}, "method"},
		{url.Values{"method": {"POST"}, "pattern": {"/v1/chat/completions"}, "credits": {"3"}}, "pattern"}, // duplicate
	}
	for _, b := range bad {
		resp, body := hxPost(t, env, d, path, b.form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="price-`+b.field+`-error"`) {
			t.Errorf("%v = %d, want 422 with a %s error; body: %.300s", b.form, resp.StatusCode, b.field, body)
		}
		if inputValue(body, "price-pattern") != b.form.Get("pattern") {
			t.Errorf("%v: the typed pattern is not kept", b.form)
		}
	}
	if n := count(); n != 1 {
		t.Errorf("%d rules after bad input, want 1 (no partial writes)", n)
	}

	// Another developer cannot see or change them.
	intruder := signIn(t, env, "prices-intruder")
	if resp, _ := hxPost(t, env, intruder, path, url.Values{"method": {"*"}, "pattern": {"/y"}, "credits": {"1"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("intruder add = %d, want 404", resp.StatusCode)
	}
	if resp, _ := hxPost(t, env, intruder, path+"/delete", url.Values{"method": {"POST"}, "pattern": {"/v1/chat/completions"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("intruder delete = %d, want 404", resp.StatusCode)
	}
	resp, body = hxPost(t, env, d, path+"/delete", url.Values{"method": {"POST"}, "pattern": {"/v1/chat/completions"}})
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `data-pattern="/v1/chat/completions"`) || count() != 0 {
		t.Errorf("delete = %d, rows %d", resp.StatusCode, count())
	}
	if resp, _ := hxPost(t, env, d, path+"/delete", url.Values{"method": {"POST"}, "pattern": {"/nope"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("delete of a missing rule = %d, want 404", resp.StatusCode)
	}
	acts := auditActions(t, env, d.user.ID)
	if !slices.Contains(acts, "price.added") || !slices.Contains(acts, "price.deleted") {
		t.Errorf("audit = %v", acts)
	}
}

func TestPlan_SavesAndRefusesBadInput(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "plan")
	ca := createApp(t, env, d, "Planned", "")
	path := appURL(ca.app) + "/plan"
	for _, b := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"monthly_allowance": {"-1"}}, "monthly_allowance"},
		{url.Values{"monthly_allowance": {"lots"}}, "monthly_allowance"},
		{url.Values{"monthly_allowance": {"10"}, "top_up_url": {"javascript:alert(1)"}}, "top_up_url"},
		{url.Values{"monthly_allowance": {"10"}, "top_up_url": {"http://example.com/buy"}}, "top_up_url"},
	} {
		resp, body := hxPost(t, env, d, path, b.form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="plan-`+strings.NewReplacer("monthly_allowance", "allowance", "top_up_url", "top-up").Replace(b.field)+`-error"`) {
			t.Errorf("%v = %d; body: %.300s", b.form, resp.StatusCode, body)
		}
	}
	if n := countRows(t, env, `SELECT count(*) FROM app_plans WHERE app_id = $1`, ca.app.ID); n != 0 {
		t.Fatalf("bad input saved a plan (%d rows)", n)
	}
	resp, body := hxPost(t, env, d, path, url.Values{"monthly_allowance": {"1000"}, "top_up_url": {"https://example.com/buy"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Plan saved.") {
		t.Fatalf("save = %d; body: %.300s", resp.StatusCode, body)
	}
	p, err := env.Store.PlanByApp(context.Background(), ca.app.ID)
	if err != nil || p.MonthlyAllowance != 1000 || p.TopUpURL != "https://example.com/buy" {
		t.Errorf("plan = %+v, %v", p, err)
	}
}

var keyPattern = regexp.MustCompile(`agk_[A-Za-z0-9_-]{43}`)

func TestDeveloperKeys_ShownOnceHashedScopedAndRevoked(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "keys")
	ca := createApp(t, env, d, "Keyed", "")
	path := appURL(ca.app) + "/keys"

	// Bad input: no name, a scope the app does not have, a bad expiry. Nothing is written.
	for _, b := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"name": {" "}}, "key-name"},
		{url.Values{"name": {"x"}, "scope": {"admin"}}, "key-scope"},
		{url.Values{"name": {"x"}, "expires_in_days": {"0"}}, "key-expires"},
		{url.Values{"name": {"x"}, "expires_in_days": {"9999"}}, "key-expires"},
	} {
		resp, body := hxPost(t, env, d, path, b.form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `id="`+b.field+`-error"`) {
			t.Errorf("%v = %d; body: %.300s", b.form, resp.StatusCode, body)
		}
	}
	if n := countRows(t, env, `SELECT count(*) FROM api_keys`); n != 0 {
		t.Fatalf("bad input wrote %d keys", n)
	}

	resp, body := hxPost(t, env, d, path, url.Values{"name": {"Nightly import"}, "scope": {"email", "openid"}, "expires_in_days": {"30"}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create = %d (Cache-Control %q); body: %.300s", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
	}
	key := keyPattern.FindString(body)
	if key == "" || !strings.Contains(body, "shown only this once") {
		t.Fatalf("the new key is not shown once; body: %.600s", body)
	}
	var stored struct {
		ID     string `db:"id"`
		Hash   []byte `db:"key_hash"`
		Scopes string `db:"scopes"`
	}
	if err := env.Store.DB().Get(&stored, `SELECT id, key_hash, array_to_string(scopes, ' ') AS scopes FROM api_keys`); err != nil {
		t.Fatal(err)
	}
	if string(stored.Hash) != string(env.Hasher().Hash(key)) || stored.Scopes != "email openid" {
		t.Errorf("stored hash or scopes wrong: scopes %q", stored.Scopes)
	}
	if n := countRows(t, env, `SELECT count(*) FROM api_keys WHERE position($1 in name || hint) > 0`, key); n != 0 {
		t.Error("the key itself is stored")
	}
	if strings.Contains(auditText(t, env), key) {
		t.Error("the key is in the audit log")
	}
	// The page shows it again only by its hint.
	_, page := do(t, env, d, http.MethodGet, appURL(ca.app), nil, false)
	if strings.Contains(page, key) || !strings.Contains(page, `data-key="`+stored.ID+`"`) {
		t.Error("the app page shows the key again, or does not list it")
	}

	intruder := signIn(t, env, "keys-intruder")
	if resp, _ := hxPost(t, env, intruder, path+"/revoke", url.Values{"key": {stored.ID}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("intruder revoke = %d, want 404", resp.StatusCode)
	}
	resp, body = hxPost(t, env, d, path+"/revoke", url.Values{"key": {stored.ID}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Revoked") {
		t.Errorf("revoke = %d; body: %.300s", resp.StatusCode, body)
	}
	if resp, _ := hxPost(t, env, d, path+"/revoke", url.Values{"key": {"not-a-uuid"}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoke of a malformed ID = %d, want 404", resp.StatusCode)
	}
	acts := auditActions(t, env, d.user.ID)
	if !slices.Contains(acts, "api_key.created") || !slices.Contains(acts, "api_key.revoked") {
		t.Errorf("audit = %v", acts)
	}
}

// A settings change of the default cost refreshes the prices section out of band.
func TestPrices_SettingsRefreshTheDefaultCost(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	d := signIn(t, env, "prices-oob")
	ca := createApp(t, env, d, "Refreshed", "")
	resp, body := hxPost(t, env, d, appURL(ca.app)+"/settings", url.Values{
		"name": {"Refreshed"}, "slug": {ca.app.Slug}, "access_ttl_minutes": {"60"}, "refresh_ttl_days": {"30"},
		"metering_enabled": {"on"}, "credits_per_call": {"7"}, "free_credits": {"10"}, "rate_limit_per_minute": {"60"},
	})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="prices"`) || !strings.Contains(body, "default of 7 credits per call") {
		t.Errorf("settings answer = %d, lacks the refreshed prices section; body: %.300s", resp.StatusCode, body)
	}
}

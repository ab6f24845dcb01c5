package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

func adminEnv(t *testing.T) (*handlertest.Env, *http.Client, string) {
	t.Helper()
	adminEmail := handlertest.UniqueEmail(t, "admin")
	env := handlertest.New(t, func(d *handlers.Config) { d.AdminEmails = []string{adminEmail} })
	return env, env.SignIn(t, adminEmail), adminEmail
}

var adminRoutes = []struct{ method, path string }{
	{"GET", "/admin"}, {"GET", "/admin/developers"}, {"GET", "/admin/users"}, {"GET", "/admin/apps"},
	{"GET", "/admin/clients"}, {"GET", "/admin/audit"}, {"POST", "/admin/suspend"},
}

func TestAdmin_EveryRouteIs404ForNonAdmins(t *testing.T) {
	t.Parallel()
	env, _, _ := adminEnv(t)
	dev := env.SignIn(t, handlertest.UniqueEmail(t, "dev"))
	for _, who := range []struct {
		name string
		c    *http.Client
	}{{"signed out", env.Client()}, {"developer", dev}} {
		for _, r := range adminRoutes {
			req, _ := http.NewRequest(r.method, env.BaseURL+r.path, strings.NewReader("target_type=user&target_id=x&action=suspend&reason=r"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := who.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s %s = %d, want 404", who.name, r.method, r.path, resp.StatusCode)
			}
		}
	}
}

func TestAdmin_OverviewAndListsShowRealNumbers(t *testing.T) {
	t.Parallel()
	env, c, _ := adminEnv(t)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "owner"), store.ClientKindGPT, "https://chatgpt.com/aip/g-1/oauth/callback")

	var events []store.UsageEvent
	for i := range 5 {
		status := 200
		if i == 0 {
			status = 502
		}
		events = append(events, store.UsageEvent{At: time.Now(), AppID: fx.App.ID, ClientID: fx.Client.ID, Method: "GET", Route: "/x", Status: status, LatencyMicros: 700})
	}
	if err := env.Store.InsertUsageEvents(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.RollUpUsage(context.Background(), 100); err != nil {
		t.Fatal(err)
	}

	resp, body := env.Get(t, c, "/admin")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="admin-stats"`) || !strings.Contains(body, "signups-chart") {
		t.Fatalf("GET /admin = %d, want the overview", resp.StatusCode)
	}
	if !strings.Contains(body, "gateway-calls-chart") || !strings.Contains(body, fx.App.Slug) {
		t.Error("the overview lacks the gateway chart or the busiest app")
	}
	totals30, _ := env.Store.PlatformTotals(context.Background(), time.Now())
	if totals30.GatewayCalls30d != 5 || totals30.GatewayErrors30d != 1 {
		t.Errorf("gateway totals = %d calls, %d errors; want 5 and 1", totals30.GatewayCalls30d, totals30.GatewayErrors30d)
	}
	busy, _ := env.Store.BusiestApps(context.Background(), time.Now().Add(-time.Hour), 5)
	if len(busy) != 1 || busy[0].Calls != 5 || busy[0].Slug != fx.App.Slug {
		t.Errorf("busiest apps = %+v, want the one app with 5 calls", busy)
	}
	totals, _ := env.Store.PlatformTotals(context.Background(), time.Now())
	if totals.Users != 2 || totals.Apps != 1 || totals.Developers != 1 {
		t.Errorf("totals = %+v, want 2 users, 1 developer, 1 app", totals)
	}
	for path, want := range map[string]string{
		"/admin/developers": fx.Owner.Email,
		"/admin/apps":       fx.App.Slug,
		"/admin/clients":    fx.Client.ID,
	} {
		resp, body := env.Get(t, c, path)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d, want a row with %q", path, resp.StatusCode, want)
		}
	}
	_, body = env.Get(t, c, "/admin/apps?q=no-such-app")
	if strings.Contains(body, fx.App.Slug) || !strings.Contains(body, "Nothing matches") {
		t.Error("search did not filter the apps list")
	}
}

func TestAdmin_KeysetPagination(t *testing.T) {
	t.Parallel()
	env, c, _ := adminEnv(t)
	ctx := context.Background()
	for i := range 60 {
		if _, err := env.Store.EnsureUser(ctx, fmt.Sprintf("page-%02d@example.com", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, first := env.Get(t, c, "/admin/users?q=page-")
	if n := strings.Count(first, `data-testid="row-`); n != 50 {
		t.Fatalf("first page rows = %d, want 50", n)
	}
	i := strings.Index(first, `/admin/users?after=`)
	if i < 0 {
		t.Fatal("no next-page link")
	}
	next := first[i : strings.Index(first[i:], `"`)+i]
	next = strings.ReplaceAll(next, "&amp;", "&")
	_, second := env.Get(t, c, next)
	if n := strings.Count(second, `data-testid="row-`); n != 10 {
		t.Errorf("second page rows = %d, want 10", n)
	}
	resp, _ := env.Get(t, c, "/admin/users?after=garbage")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad cursor = %d, want 400", resp.StatusCode)
	}
}

func TestAdmin_SuspendUserEndsSessionsBlocksSignInAndNotifies(t *testing.T) {
	t.Parallel()
	env, c, _ := adminEnv(t)
	victimEmail := handlertest.UniqueEmail(t, "victim")
	victim := env.SignIn(t, victimEmail)
	u, _ := env.Store.UserByEmail(context.Background(), victimEmail)

	listener := pq.NewListener(env.DSN, 10*time.Millisecond, time.Second, nil)
	defer listener.Close()
	if err := listener.Listen("authgpts_revocations"); err != nil {
		t.Fatal(err)
	}

	resp, _ := env.PostForm(t, c, "/admin/suspend", url.Values{"target_type": {"user"}, "target_id": {u.ID}, "action": {"suspend"}, "reason": {"abuse"}, "return_to": {"/admin/users"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/users" {
		t.Fatalf("suspend = %d to %q, want 303 to /admin/users", resp.StatusCode, resp.Header.Get("Location"))
	}
	select {
	case n := <-listener.Notify:
		if n == nil || n.Extra != "user:"+u.ID {
			t.Errorf("notification = %v, want user:%s", n, u.ID)
		}
	case <-time.After(5 * time.Second):
		t.Error("no revocation notification")
	}
	if resp, _ := env.Get(t, victim, "/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("suspended user's session still works: %d", resp.StatusCode)
	}
	env.Clock.Advance(time.Minute)
	code := env.RequestCode(t, env.Client(), victimEmail)
	resp, body := env.PostForm(t, env.Client(), "/login/verify", url.Values{"email": {victimEmail}, "code": {code}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "suspended") {
		t.Errorf("suspended user sign-in = %d, want 403", resp.StatusCode)
	}
	var action, details string
	err := env.Store.DB().QueryRow(`SELECT action, details::text FROM audit_log WHERE target_id = $1 ORDER BY id DESC LIMIT 1`, u.ID).Scan(&action, &details)
	if err != nil || action != "admin.suspend_user" || !strings.Contains(details, "abuse") {
		t.Errorf("audit = %q %q (%v), want admin.suspend_user with the reason", action, details, err)
	}

	resp, _ = env.PostForm(t, c, "/admin/suspend", url.Values{"target_type": {"user"}, "target_id": {u.ID}, "action": {"unsuspend"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("unsuspend = %d", resp.StatusCode)
	}
	env.Clock.Advance(time.Minute)
	env.SignIn(t, victimEmail)
}

func TestAdmin_SuspendClientAndApp(t *testing.T) {
	t.Parallel()
	env, c, _ := adminEnv(t)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "owner"), store.ClientKindGPT)
	for _, tt := range []struct{ typ, id string }{{"client", fx.Client.ID}, {"app", fx.App.ID}} {
		resp, _ := env.PostForm(t, c, "/admin/suspend", url.Values{"target_type": {tt.typ}, "target_id": {tt.id}, "action": {"suspend"}, "reason": {"unpaid"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("suspend %s = %d", tt.typ, resp.StatusCode)
		}
	}
	cl, _ := env.Store.ClientByID(context.Background(), fx.Client.ID)
	app, _ := env.Store.AppByID(context.Background(), fx.App.ID)
	if !cl.IsSuspended() || cl.SuspendedReason != "unpaid" || !app.IsSuspended() {
		t.Errorf("client suspended %v (%q), app suspended %v; want both", cl.IsSuspended(), cl.SuspendedReason, app.IsSuspended())
	}
}

func TestAdmin_SuspendBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	env, c, adminEmail := adminEnv(t)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "owner"), store.ClientKindGPT)
	me, _ := env.Store.UserByEmail(context.Background(), adminEmail)
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
	}{
		{"no reason", url.Values{"target_type": {"client"}, "target_id": {fx.Client.ID}, "action": {"suspend"}}, 422},
		{"unknown type", url.Values{"target_type": {"planet"}, "target_id": {fx.Client.ID}, "action": {"suspend"}, "reason": {"x"}}, 404},
		{"unknown client", url.Values{"target_type": {"client"}, "target_id": {"nope"}, "action": {"suspend"}, "reason": {"x"}}, 404},
		{"malformed user id", url.Values{"target_type": {"user"}, "target_id": {"not-a-uuid"}, "action": {"suspend"}, "reason": {"x"}}, 404},
		{"self", url.Values{"target_type": {"user"}, "target_id": {me.ID}, "action": {"suspend"}, "reason": {"x"}}, 422},
	}
	for _, tt := range tests {
		resp, _ := env.PostForm(t, c, "/admin/suspend", tt.form)
		if resp.StatusCode != tt.wantStatus {
			t.Errorf("%s = %d, want %d", tt.name, resp.StatusCode, tt.wantStatus)
		}
	}
	var n int
	_ = env.Store.DB().Get(&n, `SELECT count(*) FROM audit_log WHERE action LIKE 'admin.%'`)
	if n != 0 {
		t.Errorf("audit rows after refused suspensions = %d, want 0", n)
	}
}

func TestAdmin_AuditLogFilters(t *testing.T) {
	t.Parallel()
	env, c, adminEmail := adminEnv(t)
	env.SignIn(t, handlertest.UniqueEmail(t, "someone"))
	_, body := env.Get(t, c, "/admin/audit?action=user.signed_up&actor="+url.QueryEscape(adminEmail))
	if !strings.Contains(body, adminEmail) || strings.Contains(body, "someone-") {
		t.Error("actor filter did not narrow the audit log")
	}
	resp, body := env.Get(t, c, "/admin/audit?from=yesterday")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "From must be a date") {
		t.Errorf("bad date = %d, want 422 with a message", resp.StatusCode)
	}
}

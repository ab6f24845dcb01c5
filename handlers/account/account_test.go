package account_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// grantFor stores a consent the way the OAuth server does, for the account page to list.
func grantFor(t *testing.T, env *handlertest.Env, userID string, fx handlertest.AppFixture, scopes ...string) string {
	t.Helper()
	var id string
	err := env.Store.DB().Get(&id, `INSERT INTO grants (user_id, client_id, app_id, scopes) VALUES ($1, $2, $3, $4) RETURNING id`,
		userID, fx.Client.ID, fx.App.ID, pq.Array(scopes))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestAccount_ListsConnectedApps(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "user")
	c := env.SignIn(t, email)
	u, _ := env.Store.UserByEmail(context.Background(), email)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT)
	grant := grantFor(t, env, u.ID, fx, "openid", "email")
	other := env.NewApp(t, handlertest.UniqueEmail(t, "dev2"), store.ClientKindGPT)
	stranger, _ := env.Store.EnsureUser(context.Background(), handlertest.UniqueEmail(t, "stranger"))
	grantFor(t, env, stranger.ID, other, "openid")

	// Two metered calls this month, and a balance.
	var events []store.UsageEvent
	for range 2 {
		events = append(events, store.UsageEvent{At: env.Clock.Now(), AppID: fx.App.ID, ClientID: fx.Client.ID, UserID: u.ID, Method: "GET", Route: "/x", Status: 200, LatencyMicros: 800, Credits: 1})
	}
	if err := env.Store.InsertUsageEvents(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.RollUpUsage(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.DB().Exec(`UPDATE apps SET metering_enabled = true WHERE id = $1`, fx.App.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.SetCreditBalance(context.Background(), fx.App.ID, u.ID, 98, env.Clock.Now()); err != nil {
		t.Fatal(err)
	}

	resp, body := env.Get(t, c, "/account")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="grant-`+grant+`"`) || !strings.Contains(body, fx.App.Name) {
		t.Fatalf("GET /account = %d, want the connected app", resp.StatusCode)
	}
	if !strings.Contains(body, "2 calls this month · 98 credits left") {
		t.Error("the connected app does not show this month's calls and the credits left")
	}
	if strings.Contains(body, other.App.Name) {
		t.Error("the page lists another user's connected app")
	}
}

func TestAccount_SignOutEverywhere(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "user")
	laptop := env.SignIn(t, email)
	env.Clock.Advance(time.Minute)
	phone := env.SignIn(t, email)

	resp, _ := env.PostForm(t, laptop, "/account/sessions/end-all", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("end-all = %d, want 303", resp.StatusCode)
	}
	for name, c := range map[string]*http.Client{"laptop": laptop, "phone": phone} {
		if resp, _ := env.Get(t, c, "/account"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("%s still signed in after sign-out everywhere (%d)", name, resp.StatusCode)
		}
	}
}

func TestAccount_DeleteNeedsTheEmailedCodeAndRemovesPersonalData(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "leaving")
	c := env.SignIn(t, email)
	ctx := context.Background()
	u, _ := env.Store.UserByEmail(ctx, email)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT)
	grant := grantFor(t, env, u.ID, fx, "openid")

	listener := pq.NewListener(env.DSN, 10*time.Millisecond, time.Second, nil)
	defer listener.Close()
	if err := listener.Listen("authgpts_revocations"); err != nil {
		t.Fatal(err)
	}

	// Three gateway calls recorded for this user, rolled up.
	var events []store.UsageEvent
	for range 3 {
		events = append(events, store.UsageEvent{At: env.Clock.Now(), AppID: fx.App.ID, ClientID: fx.Client.ID, UserID: u.ID,
			Method: "GET", Route: "/x", Status: 200, LatencyMicros: 1000, Credits: 1})
	}
	if err := env.Store.InsertUsageEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.RollUpUsage(ctx, 100); err != nil {
		t.Fatal(err)
	}

	env.Clock.Advance(time.Minute)
	resp, body := env.PostForm(t, c, "/account/delete", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="delete-form"`) {
		t.Fatalf("start delete = %d, want the code form", resp.StatusCode)
	}
	msg := env.SMTP.WaitFor(t, email, 1)
	if !strings.Contains(msg.Subject, "deleting") {
		t.Fatalf("mail subject = %q, want the deletion confirmation", msg.Subject)
	}
	// A wrong code changes nothing.
	wrong := "000000"
	if msg.Code() == wrong {
		wrong = "111111"
	}
	resp, _ = env.PostForm(t, c, "/account/delete/confirm", url.Values{"code": {wrong}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("wrong code = %d, want 422", resp.StatusCode)
	}
	if _, err := env.Store.UserByEmail(ctx, email); err != nil {
		t.Fatal("a wrong code deleted the account")
	}

	resp, _ = env.PostForm(t, c, "/account/delete/confirm", url.Values{"code": {msg.Code()}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?deleted=1" {
		t.Fatalf("confirm = %d to %q, want 303 to /login?deleted=1", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := env.Store.UserByEmail(ctx, email); err != store.ErrNotFound {
		t.Errorf("user still exists (err = %v)", err)
	}
	var n int
	_ = env.Store.DB().Get(&n, `SELECT count(*) FROM grants WHERE id = $1`, grant)
	if n != 0 {
		t.Error("the user's grant survived the deletion")
	}
	_ = env.Store.DB().Get(&n, `SELECT count(*) FROM audit_log WHERE actor_email = $1 OR ip <> '' AND actor_id IS NULL AND target_id = $2`, email, u.ID)
	if n != 0 {
		t.Error("the audit log still holds the deleted user's email or IP")
	}
	// Usage is kept without the user: the developer's totals stay right.
	var calls, linked int
	_ = env.Store.DB().Get(&calls, `SELECT coalesce(sum(calls), 0) FROM usage_hourly WHERE app_id = $1`, fx.App.ID)
	_ = env.Store.DB().Get(&linked, `SELECT (SELECT count(*) FROM usage_events WHERE user_id = $1) + (SELECT count(*) FROM usage_hourly WHERE user_id = $1) + (SELECT count(*) FROM usage_user_daily WHERE user_id = $1)`, u.ID)
	if calls != 3 || linked != 0 {
		t.Errorf("after deletion: %d calls in the roll-ups (want 3), %d usage rows still linked to the user (want 0)", calls, linked)
	}
	var daily int
	_ = env.Store.DB().Get(&daily, `SELECT count(DISTINCT user_id) FROM usage_user_daily WHERE app_id = $1`, fx.App.ID)
	if daily != 1 {
		t.Errorf("distinct users in the daily roll-up = %d, want 1 (kept, anonymous)", daily)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case note := <-listener.Notify:
			if note != nil {
				got[note.Extra] = true
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("notifications = %v, want grant:%s and user:%s", got, grant, u.ID)
		}
	}
	if !got["grant:"+grant] || !got["user:"+u.ID] {
		t.Errorf("notifications = %v, want the grant and the user", got)
	}
}

func TestAccount_SignInCodeCannotConfirmDeletion(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "careful")
	c := env.SignIn(t, email)
	env.Clock.Advance(time.Minute)
	// A fresh sign-in code, as an attacker with mailbox access to a sign-in mail would have.
	signInCode := env.RequestCode(t, env.Client(), email)
	resp, _ := env.PostForm(t, c, "/account/delete/confirm", url.Values{"code": {signInCode}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("sign-in code used to confirm deletion = %d, want 422", resp.StatusCode)
	}
	if _, err := env.Store.UserByEmail(context.Background(), email); err != nil {
		t.Fatal("a sign-in code deleted the account")
	}
}

func TestAccount_RevokeGrantEndsItAndNotifies(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "user")
	c := env.SignIn(t, email)
	ctx := context.Background()
	u, _ := env.Store.UserByEmail(ctx, email)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT)
	grant := grantFor(t, env, u.ID, fx, "openid")
	other, _ := env.Store.EnsureUser(ctx, handlertest.UniqueEmail(t, "other"))
	othersGrant := grantFor(t, env, other.ID, env.NewApp(t, handlertest.UniqueEmail(t, "dev2"), store.ClientKindGPT), "openid")

	listener := pq.NewListener(env.DSN, 10*time.Millisecond, time.Second, nil)
	defer listener.Close()
	if err := listener.Listen("authgpts_revocations"); err != nil {
		t.Fatal(err)
	}

	// Someone else's grant, or a made-up ID, is 404 and changes nothing.
	for _, id := range []string{othersGrant, "not-a-grant"} {
		resp, _ := env.PostForm(t, c, "/account/grants/"+id+"/revoke", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("revoke %s = %d, want 404", id, resp.StatusCode)
		}
	}
	if g, _ := env.Store.GrantByID(ctx, othersGrant); g.RevokedAt != nil {
		t.Fatal("another user's grant was revoked")
	}

	req, _ := http.NewRequest(http.MethodPost, env.BaseURL+"/account/grants/"+grant+"/revoke", nil)
	req.Header.Set("HX-Request", "true")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(string(body)), `<section id="connected-apps"`) || strings.Contains(string(body), grant) {
		t.Fatalf("htmx revoke = %d, want the connected-apps region without the grant: %.200s", resp.StatusCode, body)
	}
	g, _ := env.Store.GrantByID(ctx, grant)
	if g.RevokedAt == nil {
		t.Fatal("grant not revoked")
	}
	select {
	case n := <-listener.Notify:
		if n == nil || n.Extra != "grant:"+grant {
			t.Errorf("notification = %v, want grant:%s", n, grant)
		}
	case <-time.After(5 * time.Second):
		t.Error("no revocation notice: other instances would keep accepting the tokens")
	}
	var action string
	_ = env.Store.DB().Get(&action, `SELECT action FROM audit_log WHERE target_id = $1`, grant)
	if action != "grant.revoked_by_user" {
		t.Errorf("audit action = %q", action)
	}
	// A second revoke of the same grant is 404, not an error.
	if resp, _ := env.PostForm(t, c, "/account/grants/"+grant+"/revoke", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second revoke = %d, want 404", resp.StatusCode)
	}
}

// TestRevokeGrant_LongPathThenLaterPostsAnswer (issue 16 item 3): a signed-in POST to
// /account/grants/<80,000 characters>/revoke is answered at once (414 at the edge), and
// the POSTs that follow, from the same session and from another, are answered too. It
// used to hang them: the long ID came back in a PostgreSQL error over 30,000 bytes,
// which left lib/pq's connection out of step and in the pool (store/driver.go).
func TestRevokeGrant_LongPathThenLaterPostsAnswer(t *testing.T) {
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "user")
	a := env.SignIn(t, email)
	b := env.SignIn(t, handlertest.UniqueEmail(t, "other"))
	a.Timeout, b.Timeout = 5*time.Second, 5*time.Second // a hang fails the test
	u, _ := env.Store.UserByEmail(context.Background(), email)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT)
	grant := grantFor(t, env, u.ID, fx, "openid")

	resp, _ := env.PostForm(t, a, "/account/grants/"+strings.Repeat("a", 80_000)+"/revoke", nil)
	if resp.StatusCode != http.StatusRequestURITooLong {
		t.Fatalf("POST with an 80,000-character grant ID = %d, want 414", resp.StatusCode)
	}
	for range 3 { // more than once, so that a poisoned pool connection would be reached
		resp, _ = env.PostForm(t, b, "/account/grants/"+grant+"/revoke", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("another user's revoke = %d, want 404", resp.StatusCode)
		}
	}
	resp, _ = env.PostForm(t, a, "/account/grants/"+grant+"/revoke", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke after the long POST = %d, want 303", resp.StatusCode)
	}
	if g, err := env.Store.GrantByID(context.Background(), grant); err != nil || g.RevokedAt == nil {
		t.Errorf("the grant is not revoked (err %v)", err)
	}
}

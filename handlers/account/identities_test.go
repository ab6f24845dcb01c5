package account_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// askToLink presses "Sign in with another identity" on /account.
func askToLink(t *testing.T, env *handlertest.Env, c *http.Client) {
	t.Helper()
	resp, _ := env.PostForm(t, c, "/account/identities/start", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?reauth=link&") {
		t.Fatalf("start linking = %d to %q, want 303 to the sign-in form", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// signInAgain signs the browser c in as email, replacing whoever it holds.
func signInAgain(t *testing.T, env *handlertest.Env, c *http.Client, email string) store.User {
	t.Helper()
	code := env.RequestCode(t, c, email)
	if resp, body := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as %s = %d: %.300s", email, resp.StatusCode, body)
	}
	u, err := env.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// linkPair signs a new identity in by email code, asks to link, signs a second new one
// in in the same browser and links them, as a person does on /account. It returns the
// browser (signed in as the second) and both identities.
func linkPair(t *testing.T, env *handlertest.Env, prefix string) (*http.Client, store.User, store.User) {
	t.Helper()
	firstEmail := handlertest.UniqueEmail(t, prefix)
	c := env.SignIn(t, firstEmail)
	first, err := env.Store.UserByEmail(context.Background(), firstEmail)
	if err != nil {
		t.Fatal(err)
	}
	askToLink(t, env, c)
	second := signInAgain(t, env, c, handlertest.UniqueEmail(t, prefix+"2"))
	if resp, body := env.PostForm(t, c, "/account/identities/link", url.Values{"identity": {first.ID}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("link = %d: %.300s", resp.StatusCode, body)
	}
	return c, first, second
}

func linkID(t *testing.T, env *handlertest.Env, userID string) string {
	t.Helper()
	var id *string
	if err := env.Store.DB().Get(&id, `SELECT link_id::text FROM users WHERE id = $1`, userID); err != nil {
		t.Fatal(err)
	}
	if id == nil {
		return ""
	}
	return *id
}

// Signed in with one identity, the person asks to link another and signs in with it in
// the same browser: /account offers the link, and once linked it manages both
// identities' connected apps; unlinking separates them again.
func TestIdentities_LinkManageAndUnlink(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	ctx := context.Background()
	work, home := handlertest.UniqueEmail(t, "work"), handlertest.UniqueEmail(t, "home")
	c := env.SignIn(t, work)
	w, _ := env.Store.UserByEmail(ctx, work)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT)
	workGrant := grantFor(t, env, w.ID, fx, "openid")

	env.Clock.Advance(3 * time.Minute)
	askToLink(t, env, c)
	env.Clock.Advance(2 * time.Minute)
	h := signInAgain(t, env, c, home)
	homeGrant := grantFor(t, env, h.ID, fx, "openid", "email")
	_, page := env.Get(t, c, "/account")
	if !strings.Contains(page, `data-testid="link-offer"`) || !strings.Contains(page, work) {
		t.Fatalf("/account after signing in as a second identity lacks the offer to link %s", work)
	}
	if strings.Contains(page, `data-testid="grant-`+workGrant+`"`) {
		t.Fatal("/account lists the other identity's app before they are linked")
	}

	env.Clock.Advance(2 * time.Minute)
	resp, body := env.PostForm(t, c, "/account/identities/link", url.Values{"identity": {w.ID}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("link = %d: %.300s", resp.StatusCode, body)
	}
	if linkID(t, env, w.ID) == "" || linkID(t, env, w.ID) != linkID(t, env, h.ID) {
		t.Fatal("the two identities are not one group after linking")
	}
	_, page = env.Get(t, c, "/account")
	if n := strings.Count(page, `data-testid="identity"`); n != 2 {
		t.Errorf("/account lists %d identities, want 2", n)
	}
	if strings.Contains(page, `data-testid="link-offer"`) {
		t.Error("the offer is still shown once linked")
	}
	for _, g := range []string{workGrant, homeGrant} {
		if !strings.Contains(page, `data-testid="grant-`+g+`"`) {
			t.Errorf("/account lacks grant %s of a linked identity", g)
		}
	}
	var audited int
	_ = env.Store.DB().Get(&audited, `SELECT count(*) FROM audit_log WHERE action = 'identity.linked' AND actor_id = $1 AND target_id = $2`, h.ID, w.ID)
	if audited != 1 {
		t.Errorf("%d identity.linked audit entries, want 1", audited)
	}

	// Signed in as home, revoke the app work connected.
	if resp, _ := env.PostForm(t, c, "/account/grants/"+workGrant+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoking a linked identity's grant = %d, want 303", resp.StatusCode)
	}
	var revoked bool
	_ = env.Store.DB().Get(&revoked, `SELECT revoked_at IS NOT NULL FROM grants WHERE id = $1`, workGrant)
	if !revoked {
		t.Error("the linked identity's grant was not revoked")
	}

	resp, _ = env.PostForm(t, c, "/account/identities/"+w.ID+"/unlink", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("unlink = %d, want 303", resp.StatusCode)
	}
	if linkID(t, env, w.ID) != "" || linkID(t, env, h.ID) != "" {
		t.Error("unlinking the only other identity left a group behind")
	}
	if _, page = env.Get(t, c, "/account"); strings.Count(page, `data-testid="identity"`) != 1 {
		t.Error("/account still lists the unlinked identity")
	}
	if strings.Contains(page, `data-testid="link-offer"`) {
		t.Error("a used offer comes back after unlinking")
	}
}

// The proof holds only when the first identity asked, while both steps are recent, and
// only for the identity this browser replaced: anything else is 409 and links nothing.
func TestIdentities_LinkRefusals(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	ctx := context.Background()
	stranger, _ := env.Store.EnsureUser(ctx, handlertest.UniqueEmail(t, "stranger"))
	first := func(u store.User) string { return u.ID }

	tests := []struct {
		name       string
		ask        bool          // the first identity pressed "Sign in with another identity"
		before     time.Duration // between asking and the second sign-in
		after      time.Duration // between the second sign-in and the link
		signOut    bool          // the first identity signs out before the second signs in
		same       bool          // the "second" sign-in is the first identity again
		identity   func(first store.User) string
		wantOffer  bool
		wantStatus int
	}{
		{name: "asked, recent", ask: true, before: time.Minute, after: time.Minute, identity: first, wantOffer: true, wantStatus: http.StatusSeeOther},
		{name: "never asked", before: time.Minute, identity: first, wantStatus: http.StatusConflict},
		{name: "asked too long before", ask: true, before: 11 * time.Minute, identity: first, wantStatus: http.StatusConflict},
		{name: "offer left too long", ask: true, before: time.Minute, after: 11 * time.Minute, identity: first, wantStatus: http.StatusConflict},
		{name: "signed out between", ask: true, before: time.Minute, signOut: true, identity: first, wantStatus: http.StatusConflict},
		{name: "same identity again", ask: true, before: time.Minute, same: true, identity: first, wantStatus: http.StatusConflict},
		{name: "another user's identity", ask: true, before: time.Minute, identity: func(store.User) string { return stranger.ID }, wantOffer: true, wantStatus: http.StatusConflict},
		{name: "malformed identity", ask: true, before: time.Minute, identity: func(store.User) string { return "not-a-uuid\x00" }, wantOffer: true, wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			firstEmail, second := handlertest.UniqueEmail(t, "first"), handlertest.UniqueEmail(t, "second")
			c := env.SignIn(t, firstEmail)
			f, _ := env.Store.UserByEmail(ctx, firstEmail)
			if tt.ask {
				askToLink(t, env, c)
			}
			if tt.signOut {
				if resp, _ := env.PostForm(t, c, "/logout", nil); resp.StatusCode != http.StatusSeeOther {
					t.Fatalf("logout = %d", resp.StatusCode)
				}
			}
			env.Clock.Advance(tt.before)
			if tt.same {
				env.Clock.Advance(time.Minute) // codes to one address are a minute apart
				second = firstEmail
			}
			s := signInAgain(t, env, c, second)
			env.Clock.Advance(tt.after)
			_, page := env.Get(t, c, "/account")
			if got := strings.Contains(page, `data-testid="link-offer"`); got != tt.wantOffer {
				t.Errorf("offer shown = %v, want %v", got, tt.wantOffer)
			}
			resp, _ := env.PostForm(t, c, "/account/identities/link", url.Values{"identity": {tt.identity(f)}})
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("link = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			linked := linkID(t, env, s.ID) != ""
			if linked != (tt.wantStatus == http.StatusSeeOther) {
				t.Errorf("linked = %v after %d", linked, resp.StatusCode)
			}
			if linkID(t, env, stranger.ID) != "" {
				t.Error("a stranger's identity was linked")
			}
		})
	}
}

// Unlink, revoke and key actions reach only the signed-in person's own group: another
// group's identities, grants and personal keys are 404 and unchanged.
func TestIdentities_OtherGroupsAreOutOfReach(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	ctx := context.Background()
	other, ua, ub := linkPair(t, env, "a")
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT)
	grant := grantFor(t, env, ua.ID, fx, "openid")
	resp, body := hxPost(t, env, other, "/account/keys", url.Values{"app": {fx.App.ID}, "name": {"script"}, "scope": {"openid"}})
	keys, _ := env.Store.PersonalKeysByUser(ctx, []string{ua.ID})
	if resp.StatusCode != http.StatusOK || len(keys) != 1 {
		t.Fatalf("a key for the linked identity's app = %d (%d keys): %.300s", resp.StatusCode, len(keys), body)
	}

	// A second person, with a group of their own and the same app connected.
	c, ui, _ := linkPair(t, env, "intruder")
	grantFor(t, env, ui.ID, fx, "openid")
	if resp, _ := env.PostForm(t, c, "/account/grants/"+grant+"/revoke", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoking another group's grant = %d, want 404", resp.StatusCode)
	}
	if resp, _ := hxPost(t, env, c, "/account/keys/revoke", url.Values{"key": {keys[0].ID}}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoking another group's key = %d, want 404", resp.StatusCode)
	}
	if _, page := env.Get(t, c, "/account"); strings.Contains(page, `data-testid="grant-`+grant+`"`) || strings.Contains(page, keys[0].ID) {
		t.Error("the intruder's page lists another group's grant or key")
	}
	if g, _ := env.Store.GrantByID(ctx, grant); g.RevokedAt != nil {
		t.Error("another group's grant was revoked")
	}
	if k, _ := env.Store.PersonalKeysByUser(ctx, []string{ua.ID}); len(k) != 1 || k[0].RevokedAt != nil {
		t.Error("another group's key was revoked")
	}
	for _, id := range []string{ua.ID, ub.ID, "nope", strings.Repeat("9", 5000)} {
		if resp, _ := env.PostForm(t, c, "/account/identities/"+id+"/unlink", nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("unlink %.20s from another account = %d, want 404", id, resp.StatusCode)
		}
	}
	if linkID(t, env, ua.ID) == "" || linkID(t, env, ua.ID) != linkID(t, env, ub.ID) {
		t.Error("another account's unlink changed the group")
	}
}

// Deleting the account deletes the signed-in identity alone, after a code mailed to it:
// a linked identity stays, with what it holds, until it is deleted with its own code.
func TestIdentities_DeleteRemovesOnlyTheSignedInIdentity(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	ctx := context.Background()
	c, ua, ub := linkPair(t, env, "a")
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT)
	grant := grantFor(t, env, ua.ID, fx, "openid")
	env.Clock.Advance(time.Minute) // codes to one address are a minute apart
	resp, page := env.PostForm(t, c, "/account/delete", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="delete-identities"`) {
		t.Fatalf("start delete = %d, want the code form saying the linked identity stays", resp.StatusCode)
	}
	msg := env.SMTP.WaitFor(t, ub.Email, 2) // the sign-in code, the link notice, then this
	if !strings.Contains(msg.Subject, "deleting") {
		t.Fatalf("mail to the signed-in identity = %q, want the deletion code", msg.Subject)
	}
	if resp, _ := env.PostForm(t, c, "/account/delete/confirm", url.Values{"code": {msg.Code()}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm delete = %d", resp.StatusCode)
	}
	if _, err := env.Store.UserByID(ctx, ub.ID); err != store.ErrNotFound {
		t.Errorf("the signed-in identity survived its deletion (%v)", err)
	}
	if g, err := env.Store.GrantByID(ctx, grant); err != nil || g.RevokedAt != nil {
		t.Errorf("the linked identity's grant went with the other identity (%v)", err)
	}
	if g, err := env.Store.IdentityGroup(ctx, ua.ID); err != nil || len(g) != 1 {
		t.Errorf("the linked identity after the deletion: group of %d (%v), want it alone", len(g), err)
	}
}

// A sign-in older than the link window must be renewed before it may ask to link: a
// browser left signed in gives whoever finds it no way to link their identity in.
func TestIdentities_StartNeedsAFreshSignIn(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	first, second := handlertest.UniqueEmail(t, "first"), handlertest.UniqueEmail(t, "second")
	c := env.SignIn(t, first)
	env.Clock.Advance(11 * time.Minute)
	resp, _ := env.PostForm(t, c, "/account/identities/start", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?reauth=1&") {
		t.Fatalf("start from an old sign-in = %d to %q, want 303 to sign in again", resp.StatusCode, resp.Header.Get("Location"))
	}
	signInAgain(t, env, c, second)
	if _, page := env.Get(t, c, "/account"); strings.Contains(page, `data-testid="link-offer"`) {
		t.Error("an old sign-in's start still led to a link offer")
	}
}

// Linking mails every identity of the new group, so a link nobody meant is seen.
func TestIdentities_LinkIsMailedToEveryIdentity(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	_, ua, ub := linkPair(t, env, "a")
	for _, addr := range []string{ua.Email, ub.Email} {
		msg := env.SMTP.WaitFor(t, addr, 1)
		if msg.Subject != "Sign-in identities linked" || !strings.Contains(msg.Text, ua.Email) || !strings.Contains(msg.Text, ub.Email) || !strings.Contains(msg.Text, "/account#identities") {
			t.Errorf("mail to %s = %q %q, want the link notice naming both identities and where to unlink", addr, msg.Subject, msg.Text)
		}
	}
}

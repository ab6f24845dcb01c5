package connections_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/connections"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// TestConnect_ProviderQuirks runs the connect flow against a real OAuth server shaped
// like each preset's provider.
func TestConnect_ProviderQuirks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		style      string
		scopes     []string
		wantScopes []string
		check      func(t *testing.T, tp *handlertest.OAuthProvider, l store.LinkedAccount)
	}{
		{"github", []string{"repo", "read:user"}, []string{"repo", "read:user"}, func(t *testing.T, tp *handlertest.OAuthProvider, l store.LinkedAccount) {
			// No expires_in, no refresh token: the token never expires, is never refreshed.
			if l.ExpiresAt != nil || l.RefreshSealed != nil {
				t.Errorf("expires_at %v, refresh token %v; want neither", l.ExpiresAt, l.RefreshSealed != nil)
			}
			if l.AccountID != "583231" || l.AccountName != "octocat-github" {
				t.Errorf("account %q %q, want GitHub's id and login", l.AccountID, l.AccountName)
			}
		}},
		{"linear", []string{"read", "write"}, []string{"read", "write"}, func(t *testing.T, tp *handlertest.OAuthProvider, l store.LinkedAccount) {
			if got := tp.AuthorizeQuery().Get("scope"); got != "read,write" {
				t.Errorf("authorize scope = %q, want Linear's comma-separated form", got)
			}
		}},
		{"google", []string{"openid", "email"}, []string{"openid", "email"}, func(t *testing.T, tp *handlertest.OAuthProvider, l store.LinkedAccount) {
			q := tp.AuthorizeQuery()
			if q.Get("access_type") != "offline" || q.Get("prompt") != "consent" {
				t.Errorf("authorize query %v, want access_type=offline&prompt=consent", q)
			}
			if l.RefreshSealed == nil {
				t.Error("no refresh token stored: Google gives one only for offline access")
			}
		}},
		{"notion", nil, []string{}, func(t *testing.T, tp *handlertest.OAuthProvider, l store.LinkedAccount) {
			// The provider refuses body credentials: the link proves Basic was used.
			if l.AccountName != "Acme workspace" || l.AccountID != "bot-42" {
				t.Errorf("account %q %q, want the workspace and bot from the token response", l.AccountID, l.AccountName)
			}
			if tp.AuthorizeQuery().Get("owner") != "user" {
				t.Error("authorize without owner=user")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.style, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			tp := handlertest.NewOAuthProvider(t, tt.style)
			p := w.addProvider(t, w.app, testProviderConfig(tp, tt.style, tt.scopes...), tp.Secret)
			email := handlertest.UniqueEmail(t, "user")
			u := w.env.SignIn(t, email)
			resp, body := w.connectTest(t, u, tt.style, "")
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("callback = %d: %.300s", resp.StatusCode, body)
			}
			l := w.linked(t, p, w.user(t, email).ID)
			if !slices.Equal([]string(l.Scopes), tt.wantScopes) {
				t.Errorf("scopes = %q, want %q", l.Scopes, tt.wantScopes)
			}
			tt.check(t, tp, l)
			// A day later the token is handed out without a refresh when it cannot expire.
			if tt.style == "github" {
				w.env.Clock.Advance(24 * time.Hour)
				tok, err := w.svc.AccessToken(context.Background(), p, l.UserID)
				if err != nil || !tp.Live(tok.Access) || tp.RefreshCalls.Load() != 0 {
					t.Errorf("AccessToken a day later = %v (refreshes %d), want the same live token", err, tp.RefreshCalls.Load())
				}
			}
		})
	}
	t.Run("notion refuses body credentials", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		tp := handlertest.NewOAuthProvider(t, "notion")
		cfg := testProviderConfig(tp, "notion")
		cfg.AuthStyle = store.AuthStyleBody // a misconfigured client: Notion answers invalid_client
		w.addProvider(t, w.app, cfg, tp.Secret)
		u := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
		if resp, _ := w.connectTest(t, u, "notion", ""); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("callback = %d, want 502 when the provider refuses the code exchange", resp.StatusCode)
		}
	})
}

// linkExpiring links a user at a generic test provider and returns the account.
func linkExpiring(t *testing.T, w *world, tp *handlertest.OAuthProvider, name string) (store.ConnectionProvider, store.LinkedAccount, *http.Client) {
	t.Helper()
	p := w.addProvider(t, w.app, testProviderConfig(tp, name, "read"), tp.Secret)
	email := handlertest.UniqueEmail(t, "user")
	u := w.env.SignIn(t, email)
	if resp, body := w.connectTest(t, u, name, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback = %d: %.300s", resp.StatusCode, body)
	}
	return p, w.linked(t, p, w.user(t, email).ID), u
}

// TestRefresh_OnceAcrossInstances: 20 callers on two instances ask for a token 5
// minutes before it expires; the provider sees one refresh and every caller gets the
// same new token.
func TestRefresh_OnceAcrossInstances(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	p, l, _ := linkExpiring(t, w, tp, "acme")
	first, err := w.svc.AccessToken(context.Background(), p, l.UserID)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := handlertest.StartInstance(t, w.env.Config)
	// Both instances share the test clock: 56 minutes on, the hour-long token is stale.
	w.env.Clock.Advance(56 * time.Minute)

	services := []*connections.Service{w.svc, second.Connections}
	var wg sync.WaitGroup
	got := make([]string, 20)
	errs := make([]error, 20)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := services[i%2].AccessToken(context.Background(), p, l.UserID)
			got[i], errs[i] = tok.Access, err
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("caller %d: %q, %v; want the token caller 0 got", i, got[i], errs[i])
		}
	}
	if got[0] == first.Access || !tp.Live(got[0]) {
		t.Errorf("the token was not refreshed")
	}
	if n := tp.RefreshCalls.Load(); n != 1 {
		t.Errorf("provider saw %d refreshes, want 1", n)
	}
	after := w.linked(t, p, l.UserID)
	if after.LastRefreshAt == nil || after.ExpiresAt == nil || !after.ExpiresAt.After(w.env.Clock.Now().Add(50*time.Minute)) {
		t.Errorf("after refresh: last_refresh %v, expires %v", after.LastRefreshAt, after.ExpiresAt)
	}
	if strings.Contains(w.env.Logs.String(), got[0]) || strings.Contains(w.env.Logs.String(), first.Access) {
		t.Error("a token appears in the logs")
	}
}

// TestRefresh_FailureNeedsReauthorization: a refused refresh marks the account, the API
// gets a clear error and /account offers Reconnect.
func TestRefresh_FailureNeedsReauthorization(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	p, l, u := linkExpiring(t, w, tp, "acme")
	tp.SetFailRefresh(true)
	w.env.Clock.Advance(56 * time.Minute)
	if _, err := w.svc.AccessToken(context.Background(), p, l.UserID); err != connections.ErrNeedsReauth {
		t.Fatalf("AccessToken = %v, want ErrNeedsReauth", err)
	}
	if got := w.linked(t, p, l.UserID).Status; got != store.ConnectionNeedsReauth {
		t.Fatalf("status = %s, want needs_reauthorization", got)
	}
	// The developer's API asks by token exchange: invalid_grant with a description.
	id, secret := w.serviceClient(t, w.app)
	userTok := w.env.UserTokenFor(t, u, w.app, "")
	status, body := exchange(t, w.env.BaseURL, id, secret, exchangeForm(userTok.Access, "acme"))
	if status != http.StatusBadRequest || !strings.Contains(body, `"error":"invalid_grant"`) || !strings.Contains(body, "reauthorization") {
		t.Errorf("exchange = %d %s, want invalid_grant naming reauthorization", status, body)
	}
	_, page := w.env.Get(t, u, "/account")
	if !strings.Contains(page, "Needs reauthorization") || !strings.Contains(page, ">Reconnect<") {
		t.Errorf("/account does not offer Reconnect for the account")
	}
	// Reconnecting makes it active again.
	tp.SetFailRefresh(false)
	if resp, _ := w.connectTest(t, u, "acme", ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reconnect = %d", resp.StatusCode)
	}
	if got := w.linked(t, p, l.UserID); got.Status != store.ConnectionActive || got.ID != l.ID {
		t.Errorf("after reconnect: status %s, id %s; want active, same row", got.Status, got.ID)
	}
}

// TestRevokeGrant_RevokesAtProvider: revoking the app on /account ends the linked
// account and revokes its tokens at the provider.
func TestRevokeGrant_RevokesAtProvider(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	p, l, u := linkExpiring(t, w, tp, "acme")
	tok, err := w.svc.AccessToken(context.Background(), p, l.UserID)
	if err != nil {
		t.Fatal(err)
	}
	userTok := w.env.UserTokenFor(t, u, w.app, "")
	if resp, _ := w.env.PostForm(t, u, "/account/grants/"+userTok.Claims.GrantID+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke grant = %d", resp.StatusCode)
	}
	if tp.Live(tok.Access) {
		t.Error("the provider still honours the token after the grant was revoked")
	}
	if got := w.linked(t, p, l.UserID); got.Status != store.ConnectionRevoked || len(got.AccessSealed) != 0 {
		t.Errorf("linked account after revocation: status %s, %d sealed bytes", got.Status, len(got.AccessSealed))
	}
	if _, err := w.svc.AccessToken(context.Background(), p, l.UserID); err != connections.ErrNotLinked {
		t.Errorf("AccessToken after revocation = %v, want ErrNotLinked", err)
	}
}

// TestDeleteAccount_RevokesAtProvider: deleting the account revokes its linked tokens
// at the provider once the deletion has committed.
func TestDeleteAccount_RevokesAtProvider(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	p, l, _ := linkExpiring(t, w, tp, "acme")
	tok, err := w.svc.AccessToken(context.Background(), p, l.UserID)
	if err != nil {
		t.Fatal(err)
	}
	u, err := w.env.Store.UserByID(context.Background(), l.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.env.Store.DeleteUser(context.Background(), u, w.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	if !tp.Live(tok.Access) {
		t.Fatal("revoked before the deletion's commit was followed by a send")
	}
	if n := w.svc.RevokePending(context.Background()); n != 1 || tp.Live(tok.Access) {
		t.Errorf("RevokePending = %d, token live %v; want 1 and revoked at the provider", n, tp.Live(tok.Access))
	}
}

// TestRefresh_UnreachableProviderKeepsTheAccount: a refresh that cannot reach the
// provider records nothing (the next call tries again) and the API is told to retry.
func TestRefresh_UnreachableProviderKeepsTheAccount(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	p, l, _ := linkExpiring(t, w, tp, "acme")
	tp.Close()
	w.env.Clock.Advance(56 * time.Minute)
	if _, err := w.svc.AccessToken(context.Background(), p, l.UserID); err != connections.ErrUnavailable {
		t.Fatalf("AccessToken = %v, want ErrUnavailable", err)
	}
	if got := w.linked(t, p, l.UserID).Status; got != store.ConnectionActive {
		t.Errorf("status = %s, want active", got)
	}
}

// TestConnect_AccountOfAnotherUserIs409: one provider account links to one user of
// the app.
func TestConnect_AccountOfAnotherUserIs409(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "github") // its /user names the same account for every token
	w.addProvider(t, w.app, testProviderConfig(tp, "github", "repo"), tp.Secret)
	first := w.env.SignIn(t, handlertest.UniqueEmail(t, "first"))
	if resp, _ := w.connectTest(t, first, "github", ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first connect = %d", resp.StatusCode)
	}
	second := w.env.SignIn(t, handlertest.UniqueEmail(t, "second"))
	resp, body := w.connectTest(t, second, "github", "")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already connected to another user") {
		t.Fatalf("second connect = %d, want 409: %.300s", resp.StatusCode, body)
	}
}

// TestConnect_SlackUserToken: Slack's user token (asked for with user_scope, answered
// inside authed_user, errors as 200 "ok": false) is linked, rotated by refresh, marked
// for reauthorization when the rotation is refused, and revoked at auth.revoke on
// disconnect.
func TestConnect_SlackUserToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "slack")
	p := w.addProvider(t, w.app, testProviderConfig(tp, "slack", "users:read", "chat:write"), tp.Secret)
	email := handlertest.UniqueEmail(t, "user")
	u := w.env.SignIn(t, email)
	if resp, body := w.connectTest(t, u, "slack", ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback = %d: %.300s", resp.StatusCode, body)
	}
	q := tp.AuthorizeQuery()
	if q.Get("user_scope") != "users:read,chat:write" || q.Has("scope") {
		t.Errorf("authorize user_scope %q, scope %q; want the user scopes comma-separated and no bot scope", q.Get("user_scope"), q.Get("scope"))
	}
	userID := w.user(t, email).ID
	l := w.linked(t, p, userID)
	if l.AccountID != "U0SLACK" || l.AccountName != "Acme Slack" || !slices.Equal([]string(l.Scopes), []string{"users:read", "chat:write"}) {
		t.Errorf("linked %q %q %q, want Slack's user, workspace and the user scopes", l.AccountID, l.AccountName, l.Scopes)
	}
	if l.RefreshSealed == nil || l.ExpiresAt == nil {
		t.Fatal("the rotating user token's refresh token or expiry was not stored")
	}
	first, err := w.svc.AccessToken(context.Background(), p, userID)
	if err != nil || !tp.Live(first.Access) {
		t.Fatalf("AccessToken = %v, want the user token Slack issued", err)
	}

	// Token rotation: 56 minutes on, the hour-long token is refreshed at the top level.
	w.env.Clock.Advance(56 * time.Minute)
	second, err := w.svc.AccessToken(context.Background(), p, userID)
	if err != nil || second.Access == first.Access || !tp.Live(second.Access) {
		t.Fatalf("AccessToken after rotation = %v (new %v), want a new live token", err, second.Access != first.Access)
	}

	// Slack's rate limit (200, ok false, ratelimited) is not a refusal: try again later.
	tp.SetRefreshError("temporarily_unavailable")
	w.env.Clock.Advance(56 * time.Minute)
	if _, err := w.svc.AccessToken(context.Background(), p, userID); err != connections.ErrUnavailable {
		t.Fatalf("AccessToken while Slack rate-limits = %v, want ErrUnavailable", err)
	}
	if got := w.linked(t, p, userID).Status; got != store.ConnectionActive {
		t.Fatalf("status after a rate-limited rotation = %s, want active", got)
	}
	// A refused rotation (200, ok false, invalid_refresh_token) needs reauthorization.
	tp.SetFailRefresh(true)
	w.env.Clock.Advance(56 * time.Minute)
	if _, err := w.svc.AccessToken(context.Background(), p, userID); err != connections.ErrNeedsReauth {
		t.Fatalf("AccessToken with a refused rotation = %v, want ErrNeedsReauth", err)
	}
	tp.SetFailRefresh(false)
	if resp, _ := w.connectTest(t, u, "slack", ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("reconnect failed")
	}
	third, err := w.svc.AccessToken(context.Background(), p, userID)
	if err != nil {
		t.Fatal(err)
	}
	// Disconnect revokes the user token at auth.revoke.
	l = w.linked(t, p, userID)
	if resp, _ := w.env.PostForm(t, u, "/account/linked/"+l.ID+"/disconnect", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect = %d", resp.StatusCode)
	}
	if tp.Live(third.Access) {
		t.Error("the user token still works at Slack after disconnect")
	}
	if logs := w.env.Logs.String(); strings.Contains(logs, first.Access) || strings.Contains(logs, third.Access) {
		t.Error("a Slack token appears in the logs")
	}
}

// TestRemoveProvider_RevokesItsUsersTokens: the developer removes a provider in the
// portal; its users' linked accounts go, and their tokens are revoked at the provider.
func TestRemoveProvider_RevokesItsUsersTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	p, l, _ := linkExpiring(t, w, tp, "acme")
	tok, err := w.svc.AccessToken(context.Background(), p, l.UserID)
	if err != nil || !tp.Live(tok.Access) {
		t.Fatalf("AccessToken = %v", err)
	}
	w.removeProvider(t, "acme")
	if _, err := w.env.Store.LinkedAccountByID(context.Background(), l.ID); err != store.ErrNotFound {
		t.Errorf("the linked account outlived its provider (%v)", err)
	}
	if tp.Live(tok.Access) {
		t.Error("the user's token still works at the provider after the provider was removed")
	}
	if _, err := w.svc.AccessToken(context.Background(), p, l.UserID); err == nil {
		t.Error("the removed provider's token is still handed out")
	}
}

// TestRefresh_ProviderUnavailableIsNotARefusal: a 503 from the provider's token endpoint
// leaves the account active (the call gets ErrUnavailable and a later one tries again);
// only a refusal needs reauthorization.
func TestRefresh_ProviderUnavailableIsNotARefusal(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	p, l, _ := linkExpiring(t, w, tp, "acme")
	tp.SetRefreshError("temporarily_unavailable")
	w.env.Clock.Advance(56 * time.Minute)
	if _, err := w.svc.AccessToken(context.Background(), p, l.UserID); err != connections.ErrUnavailable {
		t.Fatalf("AccessToken = %v, want ErrUnavailable", err)
	}
	if got := w.linked(t, p, l.UserID).Status; got != store.ConnectionActive {
		t.Fatalf("status = %s, want active", got)
	}
	tp.SetRefreshError("")
	if tok, err := w.svc.AccessToken(context.Background(), p, l.UserID); err != nil || !tp.Live(tok.Access) {
		t.Errorf("AccessToken once the provider answers = %v, want a fresh token", err)
	}
}

// TestRemoveProvider_RevokesQueuedRevocations: a revocation the provider could not take
// yet is still sent when the developer removes the provider (its queue row goes with it).
func TestRemoveProvider_RevokesQueuedRevocations(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	p, l, u := linkExpiring(t, w, tp, "acme")
	tok, err := w.svc.AccessToken(context.Background(), p, l.UserID)
	if err != nil {
		t.Fatal(err)
	}
	tp.SetRevokeStatus(http.StatusServiceUnavailable)
	if resp, _ := w.env.PostForm(t, u, "/account/linked/"+l.ID+"/disconnect", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect = %d", resp.StatusCode)
	}
	var queued int
	_ = w.env.Store.DB().Get(&queued, `SELECT count(*) FROM connection_revocations WHERE provider_id = $1`, p.ID)
	if queued != 1 || !tp.Live(tok.Access) {
		t.Fatalf("after a refused revocation: %d queued, token live %v; want 1 and live", queued, tp.Live(tok.Access))
	}
	tp.SetRevokeStatus(0)
	w.removeProvider(t, "acme")
	if tp.Live(tok.Access) {
		t.Error("the queued revocation was dropped with the provider: the token still works")
	}
}

// TestRefresh_EndedMeanwhileIsNotRevived: the user disconnects the account, or revokes
// the app, while a refresh is at the provider; the refresh does not bring the account
// back, the caller is told it is not linked, and the tokens the provider just issued are
// revoked there too.
func TestRefresh_EndedMeanwhileIsNotRevived(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"disconnect", "revoke grant"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			tp := handlertest.NewOAuthProvider(t, "generic")
			p, l, u := linkExpiring(t, w, tp, "acme")
			path := "/account/linked/" + l.ID + "/disconnect"
			if end == "revoke grant" {
				w.env.UserTokenFor(t, u, w.app, "") // the user connects the app
				var grant string
				if err := w.env.Store.DB().Get(&grant, `SELECT id FROM grants WHERE user_id = $1 AND revoked_at IS NULL`, l.UserID); err != nil {
					t.Fatal(err)
				}
				path = "/account/grants/" + grant + "/revoke"
			}
			w.env.Clock.Advance(56 * time.Minute)
			arrived, release := tp.HoldRefresh()
			defer release()
			done := make(chan error, 1)
			go func() {
				_, err := w.svc.AccessToken(context.Background(), p, l.UserID)
				done <- err
			}()
			<-arrived
			if resp, _ := w.env.PostForm(t, u, path, nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("%s during the refresh = %d", end, resp.StatusCode)
			}
			release()
			if err := <-done; err != connections.ErrNotLinked {
				t.Fatalf("AccessToken across the %s = %v, want ErrNotLinked", end, err)
			}
			if got, err := w.env.Store.LinkedAccountByID(context.Background(), l.ID); err == nil && got.Status != store.ConnectionRevoked {
				t.Errorf("the ended account came back as %s", got.Status)
			}
			w.svc.RevokePending(context.Background())
			var queued int
			_ = w.env.Store.DB().Get(&queued, `SELECT count(*) FROM connection_revocations WHERE provider_id = $1`, p.ID)
			if queued != 0 || tp.LiveCount() != 0 {
				t.Errorf("after the sweep: %d revocations queued, %d tokens live at the provider; want none", queued, tp.LiveCount())
			}
		})
	}
}

// TestDisconnect_SlackExpiredTokenEndsTheAuthorization: with token rotation, a user token
// past its 12 hours revokes nothing at auth.revoke (token_expired) while its refresh token
// still works; Disconnect then redeems the refresh token once and revokes the fresh user
// token, which ends the authorization.
func TestDisconnect_SlackExpiredTokenEndsTheAuthorization(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "slack")
	p := w.addProvider(t, w.app, testProviderConfig(tp, "slack", "users:read"), tp.Secret)
	email := handlertest.UniqueEmail(t, "user")
	u := w.env.SignIn(t, email)
	if resp, body := w.connectTest(t, u, "slack", ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback = %d: %.300s", resp.StatusCode, body)
	}
	l := w.linked(t, p, w.user(t, email).ID)
	tok, err := w.svc.AccessToken(context.Background(), p, l.UserID)
	if err != nil {
		t.Fatal(err)
	}
	tp.ExpireAccess(tok.Access)
	if resp, _ := w.env.PostForm(t, u, "/account/linked/"+l.ID+"/disconnect", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disconnect = %d", resp.StatusCode)
	}
	if tp.RefreshCalls.Load() != 1 || tp.LiveCount() != 0 {
		t.Errorf("after disconnect: %d refreshes, %d tokens live at Slack; want 1 and none", tp.RefreshCalls.Load(), tp.LiveCount())
	}
}

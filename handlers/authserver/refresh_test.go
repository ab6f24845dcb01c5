package authserver_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// tokensFor runs a full flow and returns the first token response.
func (w *world) tokensFor(t *testing.T, scope string) tokenResult {
	t.Helper()
	code, _ := w.codeFor(t, nil, w.authorizeQuery("scope", scope))
	r := w.exchange(t, code)
	wantOK(t, r)
	return r
}

func gidOf(t *testing.T, r tokenResult) string {
	t.Helper()
	return claimsOf(t, r.str("access_token"))["gid"].(string)
}

// TestRefresh_ReuseAfterGraceRevokesFamily: a rotated refresh token presented after the
// grace window revokes the grant; the successor dies with it (RFC 9700 §4.14.2).
func TestRefresh_ReuseAfterGraceRevokesFamily(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	first := w.tokensFor(t, "openid email")
	gid := gidOf(t, first)
	second := w.refresh(t, first.str("refresh_token"))
	wantOK(t, second)
	if w.liveRefreshTokens(t, gid) != 1 {
		t.Fatalf("live refresh tokens = %d after one rotation, want 1", w.liveRefreshTokens(t, gid))
	}

	w.env.Clock.Advance(oauth.RefreshGrace + time.Second)
	wantError(t, w.refresh(t, first.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	if !w.grantRevoked(t, gid) || w.liveRefreshTokens(t, gid) != 0 {
		t.Fatalf("grant revoked %v, live refresh tokens %d; want the family revoked", w.grantRevoked(t, gid), w.liveRefreshTokens(t, gid))
	}
	wantError(t, w.refresh(t, second.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	if r := w.introspect(t, second.str("access_token")); r.Body["active"] != false {
		t.Errorf("access token of the revoked family is still active: %s", r.Raw)
	}
	var audited int
	_ = w.env.Store.DB().Get(&audited, `SELECT count(*) FROM audit_log WHERE action = 'oauth.refresh_token_reused' AND target_id = $1`, gid)
	if audited != 1 {
		t.Errorf("audit entries for the reuse = %d, want 1", audited)
	}
}

// TestRefresh_RepeatInsideGraceGetsSameSuccessor: a client that lost the response and
// repeats the refresh within the window gets the same new refresh token, and the family
// stays one live token.
func TestRefresh_RepeatInsideGraceGetsSameSuccessor(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	first := w.tokensFor(t, "openid")
	gid := gidOf(t, first)
	a := w.refresh(t, first.str("refresh_token"))
	wantOK(t, a)
	w.env.Clock.Advance(oauth.RefreshGrace - 5*time.Second)
	b := w.refresh(t, first.str("refresh_token"))
	wantOK(t, b)
	if a.str("refresh_token") != b.str("refresh_token") {
		t.Errorf("repeat inside the grace window got another refresh token")
	}
	if w.grantRevoked(t, gid) || w.liveRefreshTokens(t, gid) != 1 {
		t.Errorf("grant revoked %v, live tokens %d; want live grant, one token", w.grantRevoked(t, gid), w.liveRefreshTokens(t, gid))
	}
	// The successor keeps working as usual.
	wantOK(t, w.refresh(t, b.str("refresh_token")))
}

// TestRefresh_ConcurrentRefreshesInsideWindowBothSucceed: two refreshes racing with one
// token both succeed with the same successor; nothing is revoked.
func TestRefresh_ConcurrentRefreshesInsideWindowBothSucceed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	first := w.tokensFor(t, "openid")
	gid := gidOf(t, first)
	const n = 4
	results := make([]tokenResult, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = w.refresh(t, first.str("refresh_token"))
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		wantOK(t, r)
		if r.str("refresh_token") != results[0].str("refresh_token") {
			t.Errorf("refresh %d got a different successor", i)
		}
	}
	if w.grantRevoked(t, gid) || w.liveRefreshTokens(t, gid) != 1 {
		t.Errorf("grant revoked %v, live tokens %d; want live grant, one token", w.grantRevoked(t, gid), w.liveRefreshTokens(t, gid))
	}
}

// TestRefresh_ScopeNarrowingAllowedWideningRefused: RFC 6749 §6.
func TestRefresh_ScopeNarrowingAllowedWideningRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	first := w.tokensFor(t, "openid email")
	narrow := w.refresh(t, first.str("refresh_token"), "scope", "email")
	wantOK(t, narrow)
	if narrow.str("scope") != "email" || narrow.str("id_token") != "" {
		t.Errorf("narrowed refresh: scope %q, id_token set %v; want email only, no ID token", narrow.str("scope"), narrow.str("id_token") != "")
	}
	// The refresh token itself keeps the whole grant (RFC 6749 §6).
	full := w.refresh(t, narrow.str("refresh_token"))
	wantOK(t, full)
	if full.str("scope") != "openid email" {
		t.Errorf("scope after a narrowed refresh = %q, want the full grant", full.str("scope"))
	}
	wantError(t, w.refresh(t, full.str("refresh_token"), "scope", "openid email profile"), http.StatusBadRequest, "invalid_scope")
}

// TestRefresh_BoundToClientAndExpires: another client cannot use the token, and it
// expires after the app's refresh-token lifetime.
func TestRefresh_BoundToClientAndExpires(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	first := w.tokensFor(t, "openid")
	other := w.env.NewApp(t, "other-dev@example.com", store.ClientKindGPT, gptCallback)
	r := w.post(t, oauth.PathToken, urlValues("grant_type", "refresh_token", "refresh_token", first.str("refresh_token")), other.Client.ID, other.Secret)
	wantError(t, r, http.StatusBadRequest, "invalid_grant")
	w.env.Clock.Advance(w.app.App.RefreshTokenTTL() + time.Second)
	wantError(t, w.refresh(t, first.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	if w.grantRevoked(t, gidOf(t, first)) {
		t.Errorf("an expired refresh token revoked the grant")
	}
}

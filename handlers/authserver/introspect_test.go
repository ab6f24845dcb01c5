package authserver_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

func urlValues(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// introspect asks as the world's own (confidential) client.
func (w *world) introspect(t *testing.T, token string) tokenResult {
	t.Helper()
	return w.post(t, oauth.PathIntrospect, urlValues("token", token), w.app.Client.ID, w.app.Secret)
}

// TestIntrospect_ActiveRevokedAndForeign: RFC 7662 answers for the app's tokens only;
// revoked grants and other apps' tokens are inactive, with nothing else said.
func TestIntrospect_ActiveRevokedAndForeign(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	r := w.tokensFor(t, "openid email")
	at := w.introspect(t, r.str("access_token"))
	if at.Status != 200 || at.Body["active"] != true || at.str("client_id") != w.app.Client.ID || at.str("scope") != "openid email" ||
		at.str("token_type") != "Bearer" || at.str("gid") == "" || at.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("introspect access token = %d %s", at.Status, at.Raw)
	}
	rt := w.introspect(t, r.str("refresh_token"))
	if rt.Body["active"] != true || rt.str("token_type") != "refresh_token" {
		t.Errorf("introspect refresh token = %s", rt.Raw)
	}

	// A client of another app learns nothing.
	other := w.env.NewApp(t, handlertest.UniqueEmail(t, "other"), store.ClientKindService)
	foreign := w.post(t, oauth.PathIntrospect, urlValues("token", r.str("access_token")), other.Client.ID, other.Secret)
	if foreign.Status != 200 || foreign.Raw != "{\"active\":false}\n" {
		t.Errorf("foreign introspection = %d %q, want {\"active\":false}", foreign.Status, foreign.Raw)
	}
	// Garbage and expired tokens are inactive.
	for _, tok := range []string{"not-a-token", "agr_unknown", r.str("id_token")} {
		if g := w.introspect(t, tok); g.Body["active"] != false {
			t.Errorf("introspect %.12s… = %s, want inactive", tok, g.Raw)
		}
	}

	// Revoked through /oauth/revoke: both inactive at once.
	if rev := w.post(t, oauth.PathRevoke, urlValues("token", r.str("refresh_token")), w.app.Client.ID, w.app.Secret); rev.Status != 200 {
		t.Fatalf("revoke = %d %s", rev.Status, rev.Raw)
	}
	for _, tok := range []string{r.str("access_token"), r.str("refresh_token")} {
		if g := w.introspect(t, tok); g.Body["active"] != false {
			t.Errorf("after revocation introspect = %s, want inactive", g.Raw)
		}
	}

	// Only confidential clients may introspect; a bad secret is 401.
	wantError(t, w.post(t, oauth.PathIntrospect, urlValues("token", "x"), w.app.Client.ID, "agsec_wrong"), http.StatusUnauthorized, "invalid_client")
}

// TestIntrospect_SeesRevocationByAnotherPath: a grant revoked by store.RevokeGrant
// elsewhere (the account page, another instance) reaches introspection through NOTIFY.
func TestIntrospect_SeesRevocationByAnotherPath(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	r := w.tokensFor(t, "openid")
	if g := w.introspect(t, r.str("access_token")); g.Body["active"] != true {
		t.Fatalf("introspect = %s, want active", g.Raw)
	}
	if _, err := w.env.Store.RevokeGrant(t.Context(), gidOf(t, r), w.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	// The NOTIFY travels over a real connection: wait for it (bounded), then assert.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if g := w.introspect(t, r.str("access_token")); g.Body["active"] == false {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the revocation never reached introspection")
}

// TestRevoke_RFC7009: unknown tokens and other clients' tokens answer 200 without effect;
// an access token revokes its grant; a public client revokes with its client_id.
func TestRevoke_RFC7009(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	r := w.tokensFor(t, "openid")
	for _, tok := range []string{"agr_nothing", "garbage"} {
		if rev := w.post(t, oauth.PathRevoke, urlValues("token", tok), w.app.Client.ID, w.app.Secret); rev.Status != 200 {
			t.Errorf("revoke unknown = %d, want 200", rev.Status)
		}
	}
	other := w.env.NewApp(t, handlertest.UniqueEmail(t, "other"), store.ClientKindGPT, gptCallback)
	if rev := w.post(t, oauth.PathRevoke, urlValues("token", r.str("refresh_token")), other.Client.ID, other.Secret); rev.Status != 200 || w.grantRevoked(t, gidOf(t, r)) {
		t.Fatalf("another client's revoke = %d, revoked %v; want 200 and no effect", rev.Status, w.grantRevoked(t, gidOf(t, r)))
	}
	if rev := w.post(t, oauth.PathRevoke, urlValues("token", r.str("access_token")), w.app.Client.ID, w.app.Secret); rev.Status != 200 || !w.grantRevoked(t, gidOf(t, r)) {
		t.Fatalf("revoke access token = %d, revoked %v; want the grant revoked", rev.Status, w.grantRevoked(t, gidOf(t, r)))
	}
	wantError(t, w.refresh(t, r.str("refresh_token")), http.StatusBadRequest, "invalid_grant")

	pub := newWorld(t, store.ClientKindPublic, "http://127.0.0.1/cb")
	verifier, challenge := pkcePair()
	code, _ := pub.codeFor(t, nil, pub.authorizeQuery("code_challenge", challenge, "code_challenge_method", "S256"))
	tr := pub.exchange(t, code, "code_verifier", verifier)
	wantOK(t, tr)
	rev := pub.post(t, oauth.PathRevoke, urlValues("token", tr.str("refresh_token"), "client_id", pub.app.Client.ID), "", "")
	if rev.Status != 200 || !pub.grantRevoked(t, gidOf(t, tr)) {
		t.Errorf("public revoke = %d, revoked %v", rev.Status, pub.grantRevoked(t, gidOf(t, tr)))
	}
}

// TestUserinfo_BearerGETAndPOST: the userinfo endpoint answers with the openid scope,
// adds email with the email scope, and refuses bad tokens with a Bearer challenge.
func TestUserinfo_BearerGETAndPOST(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	r := w.tokensFor(t, "openid email")
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req := mustReq(t, method, w.env.BaseURL+oauth.PathUserInfo)
		req.Header.Set("Authorization", "bearer "+r.str("access_token")) // scheme is case-insensitive
		u := do(t, req)
		if u.Status != 200 || u.str("sub") != claimsOf(t, r.str("access_token"))["sub"] || u.str("email") == "" || u.Body["email_verified"] != true {
			t.Errorf("%s userinfo = %d %s", method, u.Status, u.Raw)
		}
	}
	noToken := do(t, mustReq(t, http.MethodGet, w.env.BaseURL+oauth.PathUserInfo))
	if noToken.Status != 401 || !strings.HasPrefix(noToken.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("userinfo without token = %d %v", noToken.Status, noToken.Header)
	}
	inQuery := do(t, mustReq(t, http.MethodGet, w.env.BaseURL+oauth.PathUserInfo+"?access_token="+r.str("access_token")))
	if inQuery.Status != 401 {
		t.Errorf("userinfo with the token in the query = %d, want 401", inQuery.Status)
	}
	emailOnly := w.refresh(t, r.str("refresh_token"), "scope", "email")
	req := mustReq(t, http.MethodGet, w.env.BaseURL+oauth.PathUserInfo)
	req.Header.Set("Authorization", "Bearer "+emailOnly.str("access_token"))
	if u := do(t, req); u.Status != 403 || u.str("error") != "insufficient_scope" {
		t.Errorf("userinfo without openid = %d %s, want 403 insufficient_scope", u.Status, u.Raw)
	}
}

// TestLogs_NoSecretsTokensOrCodes runs flows that succeed and fail, then checks that no
// secret, code or token appears in the server's logs.
func TestLogs_NoSecretsTokensOrCodes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	code, _ := w.codeFor(t, nil, w.authorizeQuery())
	r := w.exchange(t, code)
	wantOK(t, r)
	w.exchange(t, code) // reuse: logged as a warning
	w.env.Clock.Advance(2 * time.Minute)
	r2 := w.refresh(t, r.str("refresh_token"))
	w.refresh(t, r.str("refresh_token")) // reuse after grace
	w.post(t, oauth.PathToken, urlValues("grant_type", "authorization_code", "code", code), w.app.Client.ID, "agsec_wrong-secret")
	w.introspect(t, r.str("access_token"))
	logs := w.env.Logs.String()
	if !strings.Contains(logs, "credential replay") {
		t.Fatalf("the logs do not even mention the replay; is logging captured? %.500s", logs)
	}
	for name, secret := range map[string]string{
		"client secret": w.app.Secret, "code": code, "access token": r.str("access_token"),
		"refresh token": r.str("refresh_token"), "rotated refresh token": r2.str("refresh_token"),
		"id token": r.str("id_token"), "wrong secret": "agsec_wrong-secret",
	} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("the logs contain the %s", name)
		}
	}
}

// TestIntrospect_ExpiredTokenInactive: a token introspected while valid (and so cached
// as verified) is inactive once it has expired.
func TestIntrospect_ExpiredTokenInactive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	r := w.tokensFor(t, "openid")
	if g := w.introspect(t, r.str("access_token")); g.Body["active"] != true {
		t.Fatalf("introspect = %s, want active", g.Raw)
	}
	w.env.Clock.Advance(w.app.App.AccessTokenTTL() + time.Second)
	if g := w.introspect(t, r.str("access_token")); g.Body["active"] != false {
		t.Errorf("introspect after expiry = %s, want inactive", g.Raw)
	}
}

// TestIntrospect_SuspendedUserInactive: suspending the user (admin console) makes their
// access tokens inactive; unsuspending makes them active again.
func TestIntrospect_SuspendedUserInactive(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	r := w.tokensFor(t, "openid")
	sub := claimsOf(t, r.str("access_token"))["sub"].(string)
	eventually := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if g := w.introspect(t, r.str("access_token")); g.Body["active"] == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("introspection never became active=%v", want)
	}
	eventually(true)
	actor := store.AuditEntry{ActorEmail: "admin@example.com"}
	if err := w.env.Store.SetSuspended(t.Context(), store.TargetUser, sub, true, "test", actor, w.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	eventually(false)
	if err := w.env.Store.SetSuspended(t.Context(), store.TargetUser, sub, false, "", actor, w.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	// Reinstating sends no NOTIFY: the cached status is rechecked after its TTL, on the
	// server's clock.
	w.env.Clock.Advance(6 * time.Second)
	eventually(true)
}

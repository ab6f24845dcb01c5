package authserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// TestPublicClient_PKCES256 runs the flow of a public (MCP) client: PKCE S256, no
// secret, client_id in the body.
func TestPublicClient_PKCES256(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindPublic, "http://127.0.0.1/callback")
	verifier, challenge := pkcePair()
	code, _ := w.codeFor(t, nil, w.authorizeQuery("redirect_uri", "http://127.0.0.1:53682/callback",
		"code_challenge", challenge, "code_challenge_method", "S256"))
	r := w.exchange(t, code, "redirect_uri", "http://127.0.0.1:53682/callback", "code_verifier", verifier)
	wantOK(t, r)
	if r.str("refresh_token") == "" {
		t.Errorf("public client got no refresh token")
	}
	// The rotated refresh token works for the public client too, without a secret.
	wantOK(t, w.refresh(t, r.str("refresh_token")))
}

// TestToken_PKCEDowngradeRefused: a code_verifier for a code issued without a challenge
// is refused (RFC 9700 §2.1.1).
func TestToken_PKCEDowngradeRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	code, _ := w.codeFor(t, nil, w.authorizeQuery())
	verifier, _ := pkcePair()
	wantError(t, w.exchange(t, code, "code_verifier", verifier), http.StatusBadRequest, "invalid_grant")
}

// TestToken_WrongOrMissingVerifierRefused: the verifier must match the challenge, and a
// code issued with a challenge needs one. A failed attempt burns the code.
func TestToken_WrongOrMissingVerifierRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	verifier, challenge := pkcePair()
	other, _ := pkcePair()
	for name, extra := range map[string][]string{
		"wrong verifier":        {"code_verifier", other},
		"missing verifier":      {},
		"challenge as verifier": {"code_verifier", challenge},
	} {
		t.Run(name, func(t *testing.T) {
			code, _ := w.codeFor(t, nil, w.authorizeQuery("code_challenge", challenge, "code_challenge_method", "S256"))
			wantError(t, w.exchange(t, code, extra...), http.StatusBadRequest, "invalid_grant")
			// The code is spent: the right verifier no longer helps.
			wantError(t, w.exchange(t, code, "code_verifier", verifier), http.StatusBadRequest, "invalid_grant")
		})
	}
}

// TestToken_ReusedCodeRevokesGrant: the second redemption of a code fails and revokes
// the grant, its refresh tokens and (through gid) its access tokens.
func TestToken_ReusedCodeRevokesGrant(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	code, _ := w.codeFor(t, nil, w.authorizeQuery())
	first := w.exchange(t, code)
	wantOK(t, first)
	gid := claimsOf(t, first.str("access_token"))["gid"].(string)

	wantError(t, w.exchange(t, code), http.StatusBadRequest, "invalid_grant")
	if !w.grantRevoked(t, gid) || w.liveRefreshTokens(t, gid) != 0 {
		t.Fatalf("grant revoked %v, live refresh tokens %d; want revoked, 0", w.grantRevoked(t, gid), w.liveRefreshTokens(t, gid))
	}
	wantError(t, w.refresh(t, first.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
	if r := w.introspect(t, first.str("access_token")); r.Body["active"] != false {
		t.Errorf("introspection of the first access token = %s, want inactive", r.Raw)
	}
}

// TestToken_ConcurrentExchangesOfOneCode: of eight exchanges of one code at once exactly
// one gets tokens (the redemption is one guarded statement), and the others count as
// replays, so the grant and the winner's tokens are revoked.
func TestToken_ConcurrentExchangesOfOneCode(t *testing.T) {
	w := newWorld(t, store.ClientKindGPT)
	code, _ := w.codeFor(t, nil, w.authorizeQuery())
	results := make([]tokenResult, 8)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = w.exchange(t, code) })
	}
	wg.Wait()
	var won []tokenResult
	for _, r := range results {
		switch {
		case r.Status == http.StatusOK:
			won = append(won, r)
		case r.Status != http.StatusBadRequest || r.str("error") != "invalid_grant":
			t.Errorf("exchange = %d %s, want 200 or invalid_grant", r.Status, r.Raw)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d exchanges of one code got tokens, want exactly 1", len(won))
	}
	gid := claimsOf(t, won[0].str("access_token"))["gid"].(string)
	if !w.grantRevoked(t, gid) || w.liveRefreshTokens(t, gid) != 0 {
		t.Errorf("grant revoked %v, live refresh tokens %d; want revoked, 0", w.grantRevoked(t, gid), w.liveRefreshTokens(t, gid))
	}
}

// TestToken_ExpiredCodeRefused: codes live CodeTTL.
func TestToken_ExpiredCodeRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	code, _ := w.codeFor(t, nil, w.authorizeQuery())
	w.env.Clock.Advance(oauth.CodeTTL + time.Second)
	wantError(t, w.exchange(t, code), http.StatusBadRequest, "invalid_grant")
}

// TestToken_CodeBoundToClient: another client (of another app, with valid credentials)
// cannot redeem the code; the rightful client still can.
func TestToken_CodeBoundToClient(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	code, _ := w.codeFor(t, nil, w.authorizeQuery())
	other := w.env.NewApp(t, handlertest.UniqueEmail(t, "other"), store.ClientKindGPT, gptCallback)
	r := w.post(t, oauth.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {gptCallback}, "client_id": {other.Client.ID}, "client_secret": {other.Secret}}, "", "")
	wantError(t, r, http.StatusBadRequest, "invalid_grant")
	wantOK(t, w.exchange(t, code))
}

// TestToken_CodeBoundToRedirectURI: redirect_uri must be repeated identically.
func TestToken_CodeBoundToRedirectURI(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT, gptCallback, "https://chat.openai.com/aip/g-0123456789abcdef/oauth/callback")
	for name, uri := range map[string]string{"different": "https://chat.openai.com/aip/g-0123456789abcdef/oauth/callback", "missing": "\x00"} {
		t.Run(name, func(t *testing.T) {
			code, _ := w.codeFor(t, nil, w.authorizeQuery())
			wantError(t, w.exchange(t, code, "redirect_uri", uri), http.StatusBadRequest, "invalid_grant")
		})
	}
}

// TestToken_InvalidClient401: a wrong secret is invalid_client with 401, and with a Basic
// challenge exactly when Basic was used (RFC 6749 §5.2).
func TestToken_InvalidClient401(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"agc_x"}, "redirect_uri": {gptCallback}}

	basic := w.post(t, oauth.PathToken, form, w.app.Client.ID, "agsec_wrong")
	wantError(t, basic, http.StatusUnauthorized, "invalid_client")
	if got := basic.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic") {
		t.Errorf("WWW-Authenticate = %q, want a Basic challenge", got)
	}

	post := url.Values{"client_id": {w.app.Client.ID}, "client_secret": {"agsec_wrong"}}
	for k, v := range form {
		post[k] = v
	}
	r := w.post(t, oauth.PathToken, post, "", "")
	wantError(t, r, http.StatusUnauthorized, "invalid_client")
	if got := r.Header.Get("WWW-Authenticate"); got != "" {
		t.Errorf("WWW-Authenticate = %q without Basic, want none", got)
	}

	for name, f := range map[string]url.Values{
		"unknown client":              {"grant_type": {"client_credentials"}, "client_id": {"agpt_nobody"}, "client_secret": {"agsec_x"}},
		"confidential without secret": {"grant_type": {"authorization_code"}, "code": {"agc_x"}, "client_id": {w.app.Client.ID}},
		"no client at all":            {"grant_type": {"authorization_code"}, "code": {"agc_x"}},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, w.post(t, oauth.PathToken, f, "", ""), http.StatusUnauthorized, "invalid_client")
		})
	}
}

// TestToken_BasicWithMatchingClientIDInBodyAccepted: Basic plus the same client_id in the
// body is fine; a different one, or a secret in both places, is refused.
func TestToken_BasicWithMatchingClientIDInBodyAccepted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	code, _ := w.codeFor(t, nil, w.authorizeQuery())
	base := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {gptCallback}}
	mismatch := url.Values{"client_id": {"agpt_someone_else"}}
	for k, v := range base {
		mismatch[k] = v
	}
	wantError(t, w.post(t, oauth.PathToken, mismatch, w.app.Client.ID, w.app.Secret), http.StatusBadRequest, "invalid_request")
	both := url.Values{"client_secret": {w.app.Secret}}
	for k, v := range base {
		both[k] = v
	}
	wantError(t, w.post(t, oauth.PathToken, both, w.app.Client.ID, w.app.Secret), http.StatusBadRequest, "invalid_request")

	match := url.Values{"client_id": {w.app.Client.ID}}
	for k, v := range base {
		match[k] = v
	}
	wantOK(t, w.post(t, oauth.PathToken, match, w.app.Client.ID, w.app.Secret))
}

// TestToken_SuspendedClientOrAppInvalidClient: suspension stops token issuance.
func TestToken_SuspendedClientOrAppInvalidClient(t *testing.T) {
	t.Parallel()
	for _, table := range []string{"clients", "apps"} {
		t.Run(table, func(t *testing.T) {
			w := newWorld(t, store.ClientKindService)
			id := w.app.Client.ID
			if table == "apps" {
				id = w.app.App.ID
			}
			if _, err := w.env.Store.DB().Exec(`UPDATE `+table+` SET suspended_at = now() WHERE id = $1`, id); err != nil {
				t.Fatal(err)
			}
			r := w.post(t, oauth.PathToken, url.Values{"grant_type": {"client_credentials"}}, w.app.Client.ID, w.app.Secret)
			wantError(t, r, http.StatusUnauthorized, "invalid_client")
		})
	}
}

// TestToken_UnsupportedGrantsRefused: password and implicit are not offered, and each
// client kind only gets its own grants.
func TestToken_UnsupportedGrantsRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	for _, gt := range []string{"password", "implicit", "urn:ietf:params:oauth:grant-type:device_code"} {
		r := w.post(t, oauth.PathToken, url.Values{"grant_type": {gt}, "username": {"u"}, "password": {"p"}}, w.app.Client.ID, w.app.Secret)
		wantError(t, r, http.StatusBadRequest, "unsupported_grant_type")
	}
	r := w.post(t, oauth.PathToken, url.Values{"grant_type": {"client_credentials"}}, w.app.Client.ID, w.app.Secret)
	wantError(t, r, http.StatusBadRequest, "unauthorized_client")
	wantError(t, w.post(t, oauth.PathToken, url.Values{}, w.app.Client.ID, w.app.Secret), http.StatusBadRequest, "invalid_request")
}

// TestToken_JSONBodyAccepted: a JSON token request works like a form.
func TestToken_JSONBodyAccepted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	code, _ := w.codeFor(t, nil, w.authorizeQuery())
	body, _ := json.Marshal(map[string]string{"grant_type": "authorization_code", "code": code, "redirect_uri": gptCallback,
		"client_id": w.app.Client.ID, "client_secret": w.app.Secret})
	req, _ := http.NewRequest(http.MethodPost, w.env.BaseURL+oauth.PathToken, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	wantOK(t, do(t, req))
}

// TestToken_RepeatedParameterRefused: RFC 6749 §3.2, parameters must not repeat.
func TestToken_RepeatedParameterRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	r := w.post(t, oauth.PathToken, url.Values{"grant_type": {"authorization_code", "client_credentials"}}, w.app.Client.ID, w.app.Secret)
	wantError(t, r, http.StatusBadRequest, "invalid_request")
}

// TestToken_NoStore: every token response, success or error, is not cacheable.
func TestToken_NoStore(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindService)
	for _, r := range []tokenResult{
		w.post(t, oauth.PathToken, url.Values{"grant_type": {"client_credentials"}}, w.app.Client.ID, w.app.Secret),
		w.post(t, oauth.PathToken, url.Values{"grant_type": {"client_credentials"}}, w.app.Client.ID, "agsec_wrong"),
		w.post(t, oauth.PathToken, url.Values{"grant_type": {"password"}}, "", ""),
	} {
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%d response headers = %v, want no-store JSON", r.Status, r.Header)
		}
	}
}

// TestClientCredentials_ServiceClient: a service client gets a token for itself without
// a refresh token, an ID token or any row written.
func TestClientCredentials_ServiceClient(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindService)
	var before int
	_ = w.env.Store.DB().Get(&before, `SELECT (SELECT count(*) FROM grants) + (SELECT count(*) FROM refresh_tokens) + (SELECT count(*) FROM auth_codes) + (SELECT count(*) FROM audit_log)`)
	r := w.post(t, oauth.PathToken, url.Values{"grant_type": {"client_credentials"}}, w.app.Client.ID, w.app.Secret)
	wantOK(t, r)
	if r.str("refresh_token") != "" || r.str("id_token") != "" {
		t.Errorf("client_credentials answered a refresh or ID token: %s", r.Raw)
	}
	c := claimsOf(t, r.str("access_token"))
	if c["sub"] != w.app.Client.ID || c["client_id"] != w.app.Client.ID || c["gid"] != nil {
		t.Errorf("claims = %v, want sub = client_id, no gid", c)
	}
	var after int
	_ = w.env.Store.DB().Get(&after, `SELECT (SELECT count(*) FROM grants) + (SELECT count(*) FROM refresh_tokens) + (SELECT count(*) FROM auth_codes) + (SELECT count(*) FROM audit_log)`)
	if after != before {
		t.Errorf("client_credentials wrote %d rows, want 0", after-before)
	}
	// User scopes are not for service clients.
	wantError(t, w.post(t, oauth.PathToken, url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}, w.app.Client.ID, w.app.Secret),
		http.StatusBadRequest, "invalid_scope")
	// Nor is the code flow.
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	resp, body := w.authorize(t, user, url.Values{"client_id": {w.app.Client.ID}, "response_type": {"code"}, "redirect_uri": {"https://x.example/cb"}})
	wantErrorPage(t, resp, body)
}

// TestToken_RotatedSecretOldStopsNewWorks: after a rotation without overlap the new
// secret works at once and the old one stops, even though the client was cached.
func TestToken_RotatedSecretOldStopsNewWorks(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindService)
	cc := url.Values{"grant_type": {"client_credentials"}}
	wantOK(t, w.post(t, oauth.PathToken, cc, w.app.Client.ID, w.app.Secret)) // now cached
	newSecret := oauth.NewToken(oauth.PrefixClientSecret)
	if err := w.env.Store.RotateClientSecret(context.Background(), w.app.Client.ID, w.env.Hasher().Hash(newSecret), oauth.SecretHint(newSecret), 0, w.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	wantOK(t, w.post(t, oauth.PathToken, cc, w.app.Client.ID, newSecret))
	wantError(t, w.post(t, oauth.PathToken, cc, w.app.Client.ID, w.app.Secret), http.StatusUnauthorized, "invalid_client")
}

package authserver_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// TestChatGPTFlow_RawRequests runs the GPT-action flow byte for byte as ChatGPT does: an
// authorization request with state, an empty scope and no PKCE; the code exchange as a
// form with the secret in the body ("Default (POST request)"); refreshes later, first
// the same way, then with "Basic authorization header".
func TestChatGPTFlow_RawRequests(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	q := w.authorizeQuery("scope", "") // ChatGPT sends scope= when the field is empty
	code, _ := w.codeFor(t, nil, q)

	r := w.exchange(t, code)
	wantOK(t, r)
	if r.str("token_type") != "Bearer" {
		t.Errorf("token_type = %q, want Bearer (capital B)", r.str("token_type"))
	}
	if _, isNumber := r.Body["expires_in"].(float64); !isNumber {
		t.Errorf("expires_in = %#v, want an integer", r.Body["expires_in"])
	}
	if r.str("scope") != "openid email profile" || r.str("refresh_token") == "" || r.str("id_token") == "" {
		t.Errorf("scope %q, refresh_token set %v, id_token set %v; want the default scopes, both tokens",
			r.str("scope"), r.str("refresh_token") != "", r.str("id_token") != "")
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	at := claimsOf(t, r.str("access_token"))
	wantAud := w.env.BaseURL + "/gw/" + w.app.App.Slug
	if at["iss"] != w.env.BaseURL || at["client_id"] != w.app.Client.ID || at["gid"] == "" || at["jti"] == "" {
		t.Errorf("access token claims = %v", at)
	}
	if aud, _ := at["aud"].(string); aud != wantAud {
		t.Errorf("aud = %v, want %q", at["aud"], wantAud)
	}

	// Later (the access token expired), ChatGPT refreshes.
	w.env.Clock.Advance(2 * time.Hour)
	r2 := w.refresh(t, r.str("refresh_token"))
	wantOK(t, r2)
	if r2.str("refresh_token") == "" || r2.str("refresh_token") == r.str("refresh_token") {
		t.Errorf("refresh did not rotate the refresh token")
	}
	w.env.Clock.Advance(2 * time.Hour)
	r3 := w.post(t, oauth.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r2.str("refresh_token")}},
		w.app.Client.ID, w.app.Secret)
	wantOK(t, r3)
	if r3.str("token_type") != "Bearer" || r3.str("refresh_token") == r2.str("refresh_token") {
		t.Errorf("Basic refresh = %s", r3.Raw)
	}
}

// TestChatGPTFlow_OAuth2Library runs the GPT-action flow with golang.org/x/oauth2 as the
// client in both token exchange methods ChatGPT offers, and verifies the ID token with
// go-oidc against discovery and the JWKS, then refreshes through the TokenSource.
func TestChatGPTFlow_OAuth2Library(t *testing.T) {
	t.Parallel()
	for _, style := range []struct {
		name  string
		style oauth2.AuthStyle
	}{
		{"DefaultPOST_AuthStyleInParams", oauth2.AuthStyleInParams},
		{"BasicHeader_AuthStyleInHeader", oauth2.AuthStyleInHeader},
	} {
		t.Run(style.name, func(t *testing.T) {
			w := newWorld(t, store.ClientKindGPT)
			ctx := context.Background()
			provider, err := oidc.NewProvider(ctx, w.env.BaseURL)
			if err != nil {
				t.Fatalf("oidc.NewProvider (discovery): %v", err)
			}
			cfg := oauth2.Config{
				ClientID:     w.app.Client.ID,
				ClientSecret: w.app.Secret,
				Endpoint:     oauth2.Endpoint{AuthURL: provider.Endpoint().AuthURL, TokenURL: provider.Endpoint().TokenURL, AuthStyle: style.style},
				RedirectURL:  gptCallback,
				Scopes:       []string{oidc.ScopeOpenID, "email"},
			}
			state, nonce := "state-"+randomString(10), "nonce-"+randomString(10)
			authURL := cfg.AuthCodeURL(state, oidc.Nonce(nonce))

			user := w.env.SignIn(t, "gpt-user-"+randomString(6)+"@example.com")
			resp, body := w.get(t, user, authURL[len(w.env.BaseURL):])
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("authorize = %d, want the consent page", resp.StatusCode)
			}
			cb := callback(t, w.consent(t, user, body, "allow", nil), gptCallback)
			if cb.Get("state") != state || cb.Get("iss") != w.env.BaseURL {
				t.Fatalf("callback = %v", cb)
			}

			tok, err := cfg.Exchange(ctx, cb.Get("code"))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if tok.TokenType != "Bearer" || tok.RefreshToken == "" || tok.Expiry.IsZero() {
				t.Errorf("token = type %q, refresh set %v, expiry %v", tok.TokenType, tok.RefreshToken != "", tok.Expiry)
			}
			rawID, _ := tok.Extra("id_token").(string)
			idt, err := provider.Verifier(&oidc.Config{ClientID: w.app.Client.ID}).Verify(ctx, rawID)
			if err != nil {
				t.Fatalf("verify id_token against discovery + JWKS: %v", err)
			}
			if idt.Nonce != nonce {
				t.Errorf("nonce = %q, want %q", idt.Nonce, nonce)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var claims struct {
				Email         string `json:"email"`
				EmailVerified bool   `json:"email_verified"`
				AuthTime      int64  `json:"auth_time"`
			}
			if err := idt.Claims(&claims); err != nil || claims.Email == "" || !claims.EmailVerified || claims.AuthTime == 0 {
				t.Errorf("id_token claims = %+v (err %v), want email, email_verified and auth_time", claims, err)
			}
			info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil || info.Email != claims.Email || info.Subject != idt.Subject {
				t.Errorf("UserInfo = %+v, %v; want email %q sub %q", info, err, claims.Email, idt.Subject)
			}

			// Refresh through the library once the access token has expired.
			expired := *tok
			expired.Expiry = time.Now().Add(-time.Minute)
			fresh, err := cfg.TokenSource(ctx, &expired).Token()
			if err != nil {
				t.Fatalf("refresh via TokenSource: %v", err)
			}
			if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
				t.Errorf("refresh returned the old tokens")
			}
		})
	}
}

// TestDiscovery_BothDocumentsIdenticalAndComplete checks the two well-known documents.
func TestDiscovery_BothDocumentsIdenticalAndComplete(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	oidcDoc := do(t, mustReq(t, http.MethodGet, w.env.BaseURL+oauth.PathOpenIDConfiguration))
	asDoc := do(t, mustReq(t, http.MethodGet, w.env.BaseURL+oauth.PathServerMetadata))
	if oidcDoc.Status != 200 || asDoc.Status != 200 || oidcDoc.Raw != asDoc.Raw {
		t.Fatalf("documents differ or fail: %d %d", oidcDoc.Status, asDoc.Status)
	}
	d := oidcDoc.Body
	want := map[string]any{
		"issuer":                 w.env.BaseURL,
		"authorization_endpoint": w.env.BaseURL + "/oauth/authorize",
		"token_endpoint":         w.env.BaseURL + "/oauth/token",
		"jwks_uri":               w.env.BaseURL + "/.well-known/jwks.json",
		"userinfo_endpoint":      w.env.BaseURL + "/oauth/userinfo",
		"introspection_endpoint": w.env.BaseURL + "/oauth/introspect",
		"revocation_endpoint":    w.env.BaseURL + "/oauth/revoke",
		"authorization_response_iss_parameter_supported": true,
		"registration_endpoint":                          w.env.BaseURL + "/oauth/register",
		"client_id_metadata_document_supported":          true,
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v, want %v", k, d[k], v)
		}
	}
	wantLists := map[string][]string{
		"code_challenge_methods_supported":      {"S256"},
		"response_types_supported":              {"code"},
		"token_endpoint_auth_methods_supported": {"client_secret_basic", "client_secret_post", "none", "private_key_jwt"},
		"id_token_signing_alg_values_supported": {"RS256"},
		"grant_types_supported":                 {"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		"scopes_supported":                      {"openid", "email", "profile"},
	}
	for k, v := range wantLists {
		got, _ := d[k].([]any)
		if len(got) != len(v) {
			t.Errorf("%s = %v, want %v", k, d[k], v)
			continue
		}
		for i := range v {
			if got[i] != v[i] {
				t.Errorf("%s = %v, want %v", k, d[k], v)
			}
		}
	}
	if cc := oidcDoc.Header.Get("Cache-Control"); cc == "" || cc == "no-store" {
		t.Errorf("discovery Cache-Control = %q, want cacheable", cc)
	}
	if oidcDoc.Header.Get("Access-Control-Allow-Origin") != "*" || oidcDoc.Header.Get("Set-Cookie") != "" {
		t.Errorf("discovery CORS %q, Set-Cookie %q", oidcDoc.Header.Get("Access-Control-Allow-Origin"), oidcDoc.Header.Get("Set-Cookie"))
	}
}

// TestJWKS_PublishesBothKeysCacheable checks the JWKS: the ES256 access-token key and
// the RS256 ID-token key, no private parts, cacheable, CORS, ETag.
func TestJWKS_PublishesBothKeysCacheable(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	r := do(t, mustReq(t, http.MethodGet, w.env.BaseURL+oauth.PathJWKS))
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "*" || r.Header.Get("ETag") == "" {
		t.Fatalf("JWKS = %d, headers %v", r.Status, r.Header)
	}
	if cc := r.Header.Get("Cache-Control"); cc == "" || cc == "no-store" {
		t.Errorf("JWKS Cache-Control = %q, want cacheable", cc)
	}
	keys, _ := r.Body["keys"].([]any)
	algs := map[string]bool{}
	for _, k := range keys {
		m := k.(map[string]any)
		algs[m["alg"].(string)] = true
		if _, private := m["d"]; private || m["kid"] == "" || m["use"] != "sig" {
			t.Errorf("key %v: private part or missing kid/use", m)
		}
	}
	if len(keys) != 2 || !algs["RS256"] || !algs["ES256"] {
		t.Errorf("JWKS keys = %v, want one RS256 and one ES256", keys)
	}
	req := mustReq(t, http.MethodGet, w.env.BaseURL+oauth.PathJWKS)
	req.Header.Set("If-None-Match", r.Header.Get("ETag"))
	if again := do(t, req); again.Status != http.StatusNotModified {
		t.Errorf("conditional JWKS = %d, want 304", again.Status)
	}
}

// TestCORS_PreflightOnMachineEndpoints checks the preflights of every browser-callable
// machine endpoint and that none of them sets a cookie.
func TestCORS_PreflightOnMachineEndpoints(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	for _, p := range []string{oauth.PathOpenIDConfiguration, oauth.PathServerMetadata, oauth.PathJWKS, oauth.PathToken, oauth.PathRevoke, oauth.PathUserInfo} {
		req := mustReq(t, http.MethodOptions, w.env.BaseURL+p)
		req.Header.Set("Origin", "https://inspector.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version")
		r := do(t, req)
		if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "*" ||
			r.Header.Get("Access-Control-Allow-Headers") == "" || r.Header.Get("Set-Cookie") != "" {
			t.Errorf("OPTIONS %s = %d, headers %v", p, r.Status, r.Header)
		}
	}
	// The token endpoint's answers (errors included) carry the CORS header and no cookie.
	r := w.post(t, oauth.PathToken, url.Values{"grant_type": {"client_credentials"}}, "", "")
	if r.Header.Get("Access-Control-Allow-Origin") != "*" || r.Header.Get("Set-Cookie") != "" {
		t.Errorf("POST /oauth/token headers = %v", r.Header)
	}
}

func mustReq(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

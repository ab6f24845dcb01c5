package handlertest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// OAuthProvider is a small but real OAuth 2.0 server run by the test, for the quirks a
// second AuthGPTs cannot show: it issues single-use codes bound to the redirect URI and
// PKCE challenge, access and refresh tokens it remembers, enforces its client
// authentication style, and answers in the shapes the real providers document.
//
//	github: form-encoded token response, comma-separated scope, no expires_in, no refresh token
//	linear: scope requested comma-separated, answered space-separated; expiring + refresh token
//	google: a refresh token only for access_type=offline&prompt=consent
//	notion: client authentication only by HTTP Basic; workspace_name and bot_id in the answer
//	slack: user scopes in user_scope; the user token inside authed_user (a refresh answers
//	       at the top level); errors as 200 {"ok": false, "error": <Slack code>}; auth.revoke
//	generic: RFC 6749 JSON with expires_in and a rotating refresh token
type OAuthProvider struct {
	t        testing.TB
	Style    string // github, linear, google, notion or generic
	ClientID string // the client registered there
	Secret   string
	srv      *httptest.Server

	mu            sync.Mutex
	codes         map[string]issuedCode
	access        map[string]bool
	refresh       map[string]bool
	lastAuthorize url.Values
	refreshErr    string          // "": refresh works; else the RFC 6749 error code it answers
	expired       map[string]bool // access tokens past their expiry (ExpireAccess)
	refreshHold   chan struct{}   // non-nil: refresh_token grants wait for it to close
	refreshIn     chan struct{}   // told when a held refresh arrives
	revokeStatus  int             // 0: revocation answers 200; else this status, revoking nothing
	expiresIn     int

	// RefreshCalls counts refresh_token grants.
	RefreshCalls atomic.Int32
}

type issuedCode struct {
	redirect, challenge, scope string
	offline                    bool
}

// NewOAuthProvider starts a provider of the given style for the test.
func NewOAuthProvider(t testing.TB, style string) *OAuthProvider {
	p := &OAuthProvider{t: t, Style: style, ClientID: "client-" + style, Secret: "provider-secret-" + randomHex(8),
		codes: map[string]issuedCode{}, access: map[string]bool{}, refresh: map[string]bool{}, expiresIn: 3600}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /revoke", p.revoke)
	mux.HandleFunc("GET /user", p.user)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the server's URL of path (/authorize, /token, /revoke, /user).
// URL is the server's URL of path (/authorize, /token, /revoke, /user).
func (p *OAuthProvider) URL(path string) string { return p.srv.URL + path }

func (p *OAuthProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	p.lastAuthorize = q
	p.mu.Unlock()
	if q.Get("client_id") != p.ClientID || q.Get("response_type") != "code" || q.Get("redirect_uri") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
		http.Error(w, "S256 only", http.StatusBadRequest)
		return
	}
	code := randomString(24)
	scope := q.Get("scope")
	if p.Style == "slack" {
		scope = q.Get("user_scope")
	}
	p.mu.Lock()
	p.codes[code] = issuedCode{redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), scope: scope,
		offline: q.Get("access_type") == "offline" && q.Get("prompt") == "consent"}
	p.mu.Unlock()
	back, _ := url.Parse(q.Get("redirect_uri"))
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *OAuthProvider) clientOK(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if p.Style == "notion" {
		// Notion: HTTP Basic only; credentials in the body are refused.
		if !basic || r.PostForm.Get("client_secret") != "" {
			return false
		}
	} else if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == p.ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(p.Secret)) == 1
}

func tokenError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// slackErrors are the codes Slack answers (200, "ok": false) for RFC 6749's.
var slackErrors = map[string]string{"invalid_request": "invalid_arguments", "invalid_client": "bad_client_secret",
	"invalid_grant": "invalid_code", "unsupported_grant_type": "invalid_grant_type", "temporarily_unavailable": "ratelimited"}

func (p *OAuthProvider) token(w http.ResponseWriter, r *http.Request) {
	tokenError := tokenError
	if p.Style == "slack" {
		tokenError = func(w http.ResponseWriter, _ int, code string) {
			if code == "invalid_grant" && r.PostForm.Get("grant_type") == "refresh_token" {
				code = "invalid_refresh_token"
			} else {
				code = slackErrors[code]
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
		}
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if !p.clientOK(r) {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	f := r.PostForm
	p.mu.Lock()
	defer p.mu.Unlock()
	var scope string
	offline := true
	switch f.Get("grant_type") {
	case "authorization_code":
		c, ok := p.codes[f.Get("code")]
		delete(p.codes, f.Get("code")) // single use
		if !ok || c.redirect != f.Get("redirect_uri") {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		if c.challenge != "" {
			sum := sha256.Sum256([]byte(f.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
				tokenError(w, http.StatusBadRequest, "invalid_grant")
				return
			}
		}
		scope, offline = c.scope, c.offline
	case "refresh_token":
		p.RefreshCalls.Add(1)
		if p.refreshErr == "temporarily_unavailable" {
			tokenError(w, http.StatusServiceUnavailable, p.refreshErr)
			return
		}
		if p.refreshErr != "" || !p.refresh[f.Get("refresh_token")] {
			tokenError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		delete(p.refresh, f.Get("refresh_token")) // rotation
		scope = "read write"
		if hold, in := p.refreshHold, p.refreshIn; hold != nil {
			// Accepted; the answer waits (the refresh is "at the provider").
			p.mu.Unlock()
			in <- struct{}{}
			<-hold
			p.mu.Lock()
		}
	default:
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	access := "at-" + randomString(20)
	p.access[access] = true
	body := map[string]any{"access_token": access, "token_type": "Bearer"}
	switch p.Style {
	case "github":
		// GitHub OAuth apps: form-encoded, comma-separated scopes, a token that does not
		// expire and no refresh token.
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		_, _ = w.Write([]byte(url.Values{"access_token": {access}, "scope": {"repo,read:user"}, "token_type": {"bearer"}}.Encode()))
		return
	case "slack":
		rt := "xoxe-1-" + randomString(20)
		p.refresh[rt] = true
		tok := map[string]any{"access_token": access, "token_type": "user", "scope": scope,
			"expires_in": p.expiresIn, "refresh_token": rt}
		body = map[string]any{"ok": true, "app_id": "A0TEST"}
		if f.Get("grant_type") == "refresh_token" {
			maps.Copy(body, tok) // a rotation answers at the top level
		} else {
			tok["id"] = "U0SLACK"
			body["authed_user"], body["team"] = tok, map[string]any{"id": "T0TEST", "name": "Acme Slack"}
			body["enterprise"], body["is_enterprise_install"] = nil, false
		}
	case "notion":
		body["bot_id"], body["workspace_name"] = "bot-42", "Acme workspace"
		body["owner"] = map[string]any{"type": "user"}
	case "linear":
		body["scope"] = strings.ReplaceAll(scope, ",", " ") // Linear answers space-separated
		fallthrough
	default:
		body["expires_in"] = p.expiresIn
		if p.Style != "linear" {
			body["scope"] = strings.ReplaceAll(scope, ",", " ")
		}
		if p.Style != "google" || offline {
			rt := "rt-" + randomString(20)
			p.refresh[rt] = true
			body["refresh_token"] = rt
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func (p *OAuthProvider) revoke(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	status := p.revokeStatus
	p.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if p.Style == "slack" {
		// auth.revoke: an access token authenticates its own revocation, which ends the
		// authorization (its refresh tokens with it; one authorization per server here).
		// A refresh token cannot call the API; an expired token revokes nothing.
		if err := r.ParseForm(); err != nil {
			tokenError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		tok := r.PostForm.Get("token")
		answer := map[string]any{"ok": false, "error": "invalid_auth"}
		p.mu.Lock()
		switch {
		case p.expired[tok]:
			answer["error"] = "token_expired"
		case p.access[tok]:
			delete(p.access, tok)
			clear(p.refresh)
			answer = map[string]any{"ok": true, "revoked": true}
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(answer)
		return
	}
	if err := r.ParseForm(); err != nil || !p.clientOK(r) {
		tokenError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	p.mu.Lock()
	tok := r.PostForm.Get("token")
	delete(p.access, tok)
	delete(p.refresh, tok)
	p.mu.Unlock()
}

func (p *OAuthProvider) user(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	ok := p.access[tok]
	p.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": 583231, "login": "octocat-" + p.Style})
}

// Live reports whether the server honours an access token.
func (p *OAuthProvider) Live(token string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.access[token]
}

// ExpireAccess makes an access token expire: it no longer works, and Slack's
// auth.revoke answers token_expired for it.
func (p *OAuthProvider) ExpireAccess(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.expired == nil {
		p.expired = map[string]bool{}
	}
	delete(p.access, token)
	p.expired[token] = true
}

// LiveCount is how many access and refresh tokens the server honours.
func (p *OAuthProvider) LiveCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.access) + len(p.refresh)
}

// AuthorizeQuery is the query of the latest authorization request.
func (p *OAuthProvider) AuthorizeQuery() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastAuthorize
}

// SetFailRefresh makes refresh_token grants fail (invalid_grant) or succeed again.
func (p *OAuthProvider) SetFailRefresh(v bool) {
	code := ""
	if v {
		code = "invalid_grant"
	}
	p.SetRefreshError(code)
}

// SetRefreshError makes refresh_token grants answer the RFC 6749 error code (in the
// provider's style; temporarily_unavailable as a 503), or succeed again ("").
func (p *OAuthProvider) SetRefreshError(code string) {
	p.mu.Lock()
	p.refreshErr = code
	p.mu.Unlock()
}

// HoldRefresh makes the next refresh_token grants wait: arrived receives when one has
// reached the provider, and release lets them all go on.
func (p *OAuthProvider) HoldRefresh() (arrived <-chan struct{}, release func()) {
	hold, in := make(chan struct{}), make(chan struct{}, 16)
	p.mu.Lock()
	p.refreshHold, p.refreshIn = hold, in
	p.mu.Unlock()
	var once sync.Once
	return in, func() {
		once.Do(func() {
			p.mu.Lock()
			p.refreshHold = nil
			p.mu.Unlock()
			close(hold)
		})
	}
}

// SetRevokeStatus makes revocation requests answer status and revoke nothing, or work
// again (0).
func (p *OAuthProvider) SetRevokeStatus(status int) {
	p.mu.Lock()
	p.revokeStatus = status
	p.mu.Unlock()
}

func randomString(n int) string { return randomHex(n)[:n] }

// Close stops the server: the provider becomes unreachable.
func (p *OAuthProvider) Close() { p.srv.Close() }

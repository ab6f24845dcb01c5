package authserver_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// countCodes counts the authorization codes stored, to prove a refused request wrote none.
func (w *world) countCodes(t *testing.T) int {
	t.Helper()
	var n int
	if err := w.env.Store.DB().Get(&n, `SELECT count(*) FROM auth_codes`); err != nil {
		t.Fatal(err)
	}
	return n
}

// wantErrorPage fails unless the answer is the error page, not a redirect.
func wantErrorPage(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, `data-testid="authorize-error"`) {
		t.Fatalf("answer = %d Location %q, want the 400 error page and no redirect; body %.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// TestAuthorize_RedirectURIExactMatch: the redirect URI must equal a registered one byte
// for byte (RFC 9700 §2.1); near misses get the error page, never a redirect.
func TestAuthorize_RedirectURIExactMatch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT, gptCallback, "http://127.0.0.1/cb")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	tests := []struct{ name, uri string }{
		{"trailing slash", gptCallback + "/"},
		{"upper-case host", strings.Replace(gptCallback, "chatgpt.com", "ChatGPT.com", 1)},
		{"upper-case path", strings.Replace(gptCallback, "/oauth/callback", "/OAuth/callback", 1)},
		{"extra query", gptCallback + "?x=1"},
		{"fragment", gptCallback + "#frag"},
		{"userinfo trick", "https://chatgpt.com@evil.example/aip/g-0123456789abcdef/oauth/callback"},
		{"host suffix trick", "https://chatgpt.com.evil.example/aip/g-0123456789abcdef/oauth/callback"},
		{"other path", "https://chatgpt.com/aip/g-other/oauth/callback"},
		{"http instead of https", strings.Replace(gptCallback, "https:", "http:", 1)},
		{"percent-encoded path", strings.Replace(gptCallback, "/oauth/", "/%6Fauth/", 1)},
		{"default port spelled out", strings.Replace(gptCallback, "chatgpt.com", "chatgpt.com:443", 1)},
		{"loopback with other path", "http://127.0.0.1:5555/other"},
		{"loopback https", "https://127.0.0.1/cb"},
		{"missing with two registered", "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := w.authorize(t, user, w.authorizeQuery("redirect_uri", tt.uri))
			wantErrorPage(t, resp, body)
		})
	}
	if n := w.countCodes(t); n != 0 {
		t.Errorf("%d codes stored for refused requests, want 0", n)
	}
	// The exact URI, and a loopback redirect on another port (RFC 8252 §7.3), pass.
	for _, ok := range []string{gptCallback, "http://127.0.0.1:49152/cb"} {
		resp, _ := w.authorize(t, user, w.authorizeQuery("redirect_uri", ok))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("authorize with %s = %d, want the consent page", ok, resp.StatusCode)
		}
	}
}

// TestAuthorize_UnknownClientRendersPageNotRedirect: a bad or missing client_id never
// redirects, whatever redirect_uri says.
func TestAuthorize_UnknownClientRendersPageNotRedirect(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	for name, q := range map[string]url.Values{
		"unknown client":  w.authorizeQuery("client_id", "agpt_doesnotexist"),
		"missing client":  w.authorizeQuery("client_id", "\x00"),
		"repeated client": {"client_id": {w.app.Client.ID, w.app.Client.ID}, "redirect_uri": {gptCallback}, "response_type": {"code"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := w.authorize(t, user, q)
			wantErrorPage(t, resp, body)
		})
	}
}

// TestAuthorize_SuspendedClientRendersPage: a suspended client or app is not sent back
// anything, not even an error.
func TestAuthorize_SuspendedClientRendersPage(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	if _, err := w.env.Store.DB().Exec(`UPDATE apps SET suspended_at = now() WHERE id = $1`, w.app.App.ID); err != nil {
		t.Fatal(err)
	}
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	resp, body := w.authorize(t, user, w.authorizeQuery())
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" || !strings.Contains(body, `data-testid="authorize-error"`) {
		t.Fatalf("authorize for a suspended app = %d Location %q, want 403 page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestAuthorize_IssOnEveryResponse: success, denial and each kind of redirected error
// carry iss equal to the issuer byte for byte, and state (RFC 9207, RFC 6749 §4.1.2.1).
func TestAuthorize_IssOnEveryResponse(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	check := func(t *testing.T, resp *http.Response, state, wantErr string) {
		t.Helper()
		cb := callback(t, resp, gptCallback)
		if cb.Get("iss") != w.env.BaseURL || cb.Get("state") != state || cb.Get("error") != wantErr {
			t.Errorf("callback = %v, want iss %q, state %q, error %q", cb, w.env.BaseURL, state, wantErr)
		}
		if wantErr == "" && cb.Get("code") == "" {
			t.Errorf("callback has no code")
		}
	}
	errorCases := []struct {
		name    string
		q       url.Values
		wantErr string
	}{
		{"implicit flow refused", w.authorizeQuery("response_type", "token"), "unsupported_response_type"},
		{"hybrid flow refused", w.authorizeQuery("response_type", "code id_token"), "unsupported_response_type"},
		{"missing response_type", w.authorizeQuery("response_type", "\x00"), "invalid_request"},
		{"unknown scope", w.authorizeQuery("scope", "openid admin:everything"), "invalid_scope"},
		{"plain PKCE", w.authorizeQuery("code_challenge", strings.Repeat("a", 43), "code_challenge_method", "plain"), "invalid_request"},
		{"bad prompt", w.authorizeQuery("prompt", "sometimes"), "invalid_request"},
		{"form_post mode", w.authorizeQuery("response_mode", "form_post"), "invalid_request"},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := w.authorize(t, user, tt.q)
			check(t, resp, tt.q.Get("state"), tt.wantErr)
		})
	}
	t.Run("login_required", func(t *testing.T) {
		q := w.authorizeQuery("prompt", "none")
		resp, _ := w.authorize(t, w.env.Client(), q)
		check(t, resp, q.Get("state"), "login_required")
	})
	t.Run("consent_required", func(t *testing.T) {
		q := w.authorizeQuery("prompt", "none")
		resp, _ := w.authorize(t, user, q)
		check(t, resp, q.Get("state"), "consent_required")
	})
	t.Run("denied", func(t *testing.T) {
		q := w.authorizeQuery()
		_, page := w.authorize(t, user, q)
		check(t, w.consent(t, user, page, "deny", nil), q.Get("state"), "access_denied")
	})
	t.Run("allowed", func(t *testing.T) {
		q := w.authorizeQuery()
		_, page := w.authorize(t, user, q)
		check(t, w.consent(t, user, page, "allow", nil), q.Get("state"), "")
	})
	t.Run("remembered", func(t *testing.T) {
		q := w.authorizeQuery()
		resp, _ := w.authorize(t, user, q)
		check(t, resp, q.Get("state"), "")
	})
}

// TestAuthorize_PlainPKCERefused: "plain" (and a challenge without a method, which RFC
// 7636 would read as plain) is refused for every client kind.
func TestAuthorize_PlainPKCERefused(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{store.ClientKindGPT, store.ClientKindPublic} {
		t.Run(kind, func(t *testing.T) {
			w := newWorld(t, kind, "http://127.0.0.1/callback")
			user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
			verifier, _ := pkcePair()
			for _, method := range []string{"plain", "\x00", "s256"} {
				resp, _ := w.authorize(t, user, w.authorizeQuery("code_challenge", verifier, "code_challenge_method", method))
				cb := callback(t, resp, "http://127.0.0.1/callback")
				if cb.Get("error") != "invalid_request" {
					t.Errorf("method %q: error = %q, want invalid_request", method, cb.Get("error"))
				}
			}
			if n := w.countCodes(t); n != 0 {
				t.Errorf("%d codes stored, want 0", n)
			}
		})
	}
}

// TestAuthorize_PublicClientWithoutPKCERefused: public clients must use PKCE.
func TestAuthorize_PublicClientWithoutPKCERefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindPublic, "http://127.0.0.1/callback")
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	resp, _ := w.authorize(t, user, w.authorizeQuery())
	cb := callback(t, resp, "http://127.0.0.1/callback")
	if cb.Get("error") != "invalid_request" || !strings.Contains(cb.Get("error_description"), "PKCE") {
		t.Errorf("callback = %v, want invalid_request about PKCE", cb)
	}
}

// TestAuthorize_NotSignedInGoesToLoginAndBack: the flow survives the email-code sign-in.
func TestAuthorize_NotSignedInGoesToLoginAndBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	c := w.env.Client()
	q := w.authorizeQuery()
	resp, _ := w.authorize(t, c, q)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?return_to=") {
		t.Fatalf("authorize without a session = %d %q, want 303 to /login", resp.StatusCode, loc)
	}
	returnTo, _ := url.Parse(loc)
	back := returnTo.Query().Get("return_to")
	email := handlertest.UniqueEmail(t, "user")
	code := w.env.RequestCode(t, c, email)
	resp, _ = w.env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}, "return_to": {back}})
	if got := resp.Header.Get("Location"); got != back {
		t.Fatalf("after sign-in Location = %q, want back to %q", got, back)
	}
	resp, body := w.get(t, c, back)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="consent"`) {
		t.Fatalf("back at authorize = %d, want the consent page", resp.StatusCode)
	}
}

// TestAuthorize_PromptLoginAndMaxAgeAskToSignInAgain: prompt=login and an exceeded
// max_age send the user to sign in again and then continue; the ID token's auth_time is
// the new sign-in.
func TestAuthorize_PromptLoginAndMaxAgeAskToSignInAgain(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	email := handlertest.UniqueEmail(t, "user")
	c := w.env.SignIn(t, email)
	for _, tt := range []struct {
		name  string
		extra []string
	}{
		{"prompt=login", []string{"prompt", "login"}},
		{"max_age exceeded", []string{"max_age", "60"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w.env.Clock.Advance(2 * time.Minute)
			q := w.authorizeQuery(tt.extra...)
			resp, _ := w.authorize(t, c, q)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?reauth=1&return_to=") {
				t.Fatalf("authorize = %d %q, want a sign-in again", resp.StatusCode, loc)
			}
			u, _ := url.Parse(loc)
			back := u.Query().Get("return_to")
			// Not signing in again and going straight back asks again (no loop-hole).
			if again, _ := w.get(t, c, back); !strings.HasPrefix(again.Header.Get("Location"), "/login?reauth=1") {
				t.Fatalf("back without signing in = %d %q, want a sign-in again", again.StatusCode, again.Header.Get("Location"))
			}
			w.env.Clock.Advance(time.Second)
			code := w.env.RequestCode(t, c, email)
			resp, _ = w.env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}, "return_to": {back}})
			if resp.Header.Get("Location") != back {
				t.Fatalf("after sign-in Location = %q, want %q", resp.Header.Get("Location"), back)
			}
			resp, body := w.get(t, c, back)
			if resp.StatusCode == http.StatusOK {
				resp = w.consent(t, c, body, "allow", nil)
			}
			cb := callback(t, resp, gptCallback)
			if cb.Get("code") == "" {
				t.Fatalf("no code after signing in again: %v", cb)
			}
		})
	}
	t.Run("prompt=none with max_age exceeded", func(t *testing.T) {
		w.env.Clock.Advance(2 * time.Minute)
		resp, _ := w.authorize(t, c, w.authorizeQuery("prompt", "none", "max_age", "30"))
		if cb := callback(t, resp, gptCallback); cb.Get("error") != "login_required" {
			t.Errorf("error = %q, want login_required", cb.Get("error"))
		}
	})
}

// TestConsent_RememberedSkipsPageUnlessNewScopes: a subset of granted scopes skips the
// page; a new scope, or prompt=consent, asks again.
func TestConsent_RememberedSkipsPageUnlessNewScopes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	w.codeFor(t, user, w.authorizeQuery("scope", "openid email"))

	resp, _ := w.authorize(t, user, w.authorizeQuery("scope", "openid"))
	if cb := callback(t, resp, gptCallback); cb.Get("code") == "" {
		t.Fatalf("subset of the grant: %v, want a code without asking", cb)
	}
	for name, q := range map[string]url.Values{
		"new scope":      w.authorizeQuery("scope", "openid email profile"),
		"prompt=consent": w.authorizeQuery("scope", "openid", "prompt", "consent"),
	} {
		resp, body := w.authorize(t, user, q)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="consent"`) {
			t.Errorf("%s: authorize = %d, want the consent page", name, resp.StatusCode)
		}
	}
}

// TestConsent_OptionalScopeSwitchedOff: switching a scope off keeps it out of the code,
// the tokens and the grant, and openid cannot be switched off.
func TestConsent_OptionalScopeSwitchedOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	q := w.authorizeQuery("scope", "openid email profile")
	_, page := w.authorize(t, user, q)
	if strings.Contains(page, `name="scope" value="openid"`) {
		t.Errorf("openid is offered as a toggle; it is required")
	}
	cb := callback(t, w.consent(t, user, page, "allow", []string{"profile"}), gptCallback)
	r := w.exchange(t, cb.Get("code"))
	wantOK(t, r)
	if r.str("scope") != "openid profile" {
		t.Errorf("scope = %q, want %q", r.str("scope"), "openid profile")
	}
	if idt := claimsOf(t, r.str("id_token")); idt["email"] != nil {
		t.Errorf("id_token carries email without the email scope: %v", idt)
	}
	g, err := w.env.Store.GrantByID(context.Background(), claimsOf(t, r.str("access_token"))["gid"].(string))
	if err != nil || strings.Join(g.Scopes, " ") != "openid profile" {
		t.Errorf("grant scopes = %v (%v), want [openid profile]", g.Scopes, err)
	}
}

// TestConsent_TicketBoundToUser: a consent form posted by another signed-in user is
// refused and writes nothing.
func TestConsent_TicketBoundToUser(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	alice := w.env.SignIn(t, handlertest.UniqueEmail(t, "alice"))
	mallory := w.env.SignIn(t, handlertest.UniqueEmail(t, "mallory"))
	_, page := w.authorize(t, alice, w.authorizeQuery())
	resp := w.consent(t, mallory, page, "allow", nil)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("consent by another user = %d %q, want 400 page", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, tampered := range []string{"x" + ticketOf(t, page), ticketOf(t, page)[:20]} {
		resp, _ := w.env.PostForm(t, alice, "/oauth/consent", url.Values{"ticket": {tampered}, "decision": {"allow"}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("tampered ticket = %d, want 400", resp.StatusCode)
		}
	}
	if n := w.countCodes(t); n != 0 {
		t.Errorf("%d codes stored, want 0", n)
	}
}

// TestConsent_ExpiredTicketRefused: an old consent page no longer works.
func TestConsent_ExpiredTicketRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, page := w.authorize(t, user, w.authorizeQuery())
	w.env.Clock.Advance(oauth.ConsentTicketTTL + time.Second)
	if resp := w.consent(t, user, page, "allow", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("expired consent = %d, want 400", resp.StatusCode)
	}
}

// TestConsent_CrossOriginPostRefused: the consent POST is same-origin protected.
func TestConsent_CrossOriginPostRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	user := w.env.SignIn(t, handlertest.UniqueEmail(t, "user"))
	_, page := w.authorize(t, user, w.authorizeQuery())
	form := url.Values{"ticket": {ticketOf(t, page)}, "decision": {"allow"}}
	req, _ := http.NewRequest(http.MethodPost, w.env.BaseURL+"/oauth/consent", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := user.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || w.countCodes(t) != 0 {
		t.Fatalf("cross-site consent = %d, codes %d; want 403 and none", resp.StatusCode, w.countCodes(t))
	}
}

// TestConsentPage_ShowsWhoAsksAndCannotBeFramed checks the page content and headers.
func TestConsentPage_ShowsWhoAsksAndCannotBeFramed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	email := handlertest.UniqueEmail(t, "user")
	user := w.env.SignIn(t, email)
	resp, page := w.authorize(t, user, w.authorizeQuery("scope", "openid email"))
	for _, want := range []string{
		w.app.App.Name, w.app.Owner.Email, w.app.Client.Name, "chatgpt.com", email,
		"Confirm who you are", "See your email address",
		`<button type="submit" name="decision" value="allow"`, `>Allow</button>`,
		`<button type="submit" name="decision" value="deny"`, `>Deny</button>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("consent page framing headers: XFO %q CSP %q", resp.Header.Get("X-Frame-Options"), resp.Header.Get("Content-Security-Policy"))
	}
}

// TestAuthorize_MaxAgeCountsFromThisBrowsersSignIn: auth_time is when the user signed in
// on this browser, so a fresh sign-in on another device does not satisfy max_age here.
func TestAuthorize_MaxAgeCountsFromThisBrowsersSignIn(t *testing.T) {
	t.Parallel()
	w := newWorld(t, store.ClientKindGPT)
	email := handlertest.UniqueEmail(t, "user")
	laptop := w.env.SignIn(t, email)
	w.env.Clock.Advance(2 * time.Minute)
	w.env.SignIn(t, email) // the phone, just now

	resp, _ := w.authorize(t, laptop, w.authorizeQuery("max_age", "60"))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?reauth=1&return_to=") {
		t.Fatalf("laptop signed in 2 minutes ago, max_age=60: %d %q, want a sign-in again", resp.StatusCode, loc)
	}
}

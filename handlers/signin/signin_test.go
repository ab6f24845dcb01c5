package signin_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

func sessionCount(t *testing.T, env *handlertest.Env, email string) int {
	t.Helper()
	var n int
	err := env.Store.DB().Get(&n, `SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1`, email)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSignUp_NewEmailGetsAccountAndDashboard(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "new")
	c := env.Client()

	resp, body := env.Get(t, c, "/signup")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="email" type="email"`) || !strings.Contains(body, `autocomplete="email"`) {
		t.Fatalf("GET /signup = %d, want the email form", resp.StatusCode)
	}
	code := env.RequestCode(t, c, email)
	if _, err := env.Store.UserByEmail(context.Background(), email); err != store.ErrNotFound {
		t.Fatalf("account exists before the code is verified (err = %v)", err)
	}
	resp, _ = env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("verify = %d to %q, want 303 to /dashboard", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = env.Get(t, c, "/dashboard")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "No apps yet") {
		t.Fatalf("GET /dashboard = %d, want the empty dashboard", resp.StatusCode)
	}
	u, err := env.Store.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("account not created: %v", err)
	}
	var actions []string
	if err := env.Store.DB().Select(&actions, `SELECT action FROM audit_log WHERE actor_id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	if len(actions) != 1 || actions[0] != "user.signed_up" {
		t.Errorf("audit actions = %v, want [user.signed_up]", actions)
	}
}

func TestSignIn_ExistingUserAndCodeMail(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "known")
	env.SignIn(t, email)
	env.Clock.Advance(time.Minute) // past the resend throttle

	c := env.SignIn(t, email)
	resp, body := env.Get(t, c, "/account")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, email) {
		t.Fatalf("GET /account = %d, want the signed-in account page", resp.StatusCode)
	}
	msg := env.SMTP.WaitFor(t, email, 1)
	if msg.Subject != "Your AuthGPTs sign-in code" || msg.HTML == "" || !strings.Contains(msg.HTML, msg.Code()) {
		t.Errorf("mail = subject %q, html %d bytes; want subject, text and html with the code", msg.Subject, len(msg.HTML))
	}
	var n int
	_ = env.Store.DB().Get(&n, `SELECT count(*) FROM users WHERE email = $1`, email)
	if n != 1 {
		t.Errorf("users with that email = %d, want 1", n)
	}
}

func TestVerify_ExpiredCodeRefused(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "expired")
	c := env.Client()
	code := env.RequestCode(t, c, email)
	env.Clock.Advance(10*time.Minute + time.Second)

	resp, body := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "wrong or has expired") {
		t.Fatalf("verify expired code = %d, want 422 with a message", resp.StatusCode)
	}
	if sessionCount(t, env, email) != 0 {
		t.Error("an expired code started a session")
	}
}

func TestVerify_FiveWrongTriesBurnTheCode(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "wrong")
	c := env.Client()
	code := env.RequestCode(t, c, email)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := range 5 {
		resp, _ := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {wrong}})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("wrong try %d = %d, want 422", i+1, resp.StatusCode)
		}
	}
	resp, _ := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("right code after five wrong tries = %d, want 422 (burnt)", resp.StatusCode)
	}
	if sessionCount(t, env, email) != 0 {
		t.Error("a burnt code started a session")
	}
}

func TestVerify_FourWrongTriesThenRightCodeWorks(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "four")
	c := env.Client()
	code := env.RequestCode(t, c, email)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for range 4 {
		env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {wrong}})
	}
	resp, _ := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("right code on the fifth try = %d, want 303", resp.StatusCode)
	}
}

func TestVerify_CodeIsSingleUse(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "once")
	c := env.Client()
	code := env.RequestCode(t, c, email)
	resp, _ := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first use = %d, want 303", resp.StatusCode)
	}
	resp, _ = env.PostForm(t, env.Client(), "/login/verify", url.Values{"email": {email}, "code": {code}})
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("second use = %d, want 422", resp.StatusCode)
	}
}

func TestSendCode_ResendThrottled(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "resend")
	c := env.Client()
	first := env.RequestCode(t, c, email)

	resp, body := env.PostForm(t, c, "/login", url.Values{"email": {email}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("immediate resend = %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, "the last code still works") {
		t.Error("throttled page does not explain the wait")
	}
	if n := env.SMTP.Count(email); n != 1 {
		t.Fatalf("mails sent = %d, want 1", n)
	}

	env.Clock.Advance(31 * time.Second)
	second := env.RequestCode(t, c, email)
	// A sent code replaces the previous one.
	if first != second {
		resp, _ = env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {first}})
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("replaced code = %d, want 422", resp.StatusCode)
		}
	}
	resp, _ = env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {second}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("newest code = %d, want 303", resp.StatusCode)
	}
}

func TestSendCode_PerEmailAndPerIPLimits(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t, func(d *handlers.Config) {
		d.OTPLimits = store.OTPSendLimits{ResendAfter: time.Second, Window: time.Hour, PerEmail: 3, PerIP: 5}
	})
	c := env.Client()
	email := handlertest.UniqueEmail(t, "limit")
	for i := range 3 {
		env.RequestCode(t, c, email)
		env.Clock.Advance(2 * time.Second)
		_ = i
	}
	resp, _ := env.PostForm(t, c, "/login", url.Values{"email": {email}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th code for one email = %d, want 429", resp.StatusCode)
	}
	// Two more emails from the same IP reach the per-IP cap of 5 sends.
	env.RequestCode(t, c, handlertest.UniqueEmail(t, "ip1"))
	env.RequestCode(t, c, handlertest.UniqueEmail(t, "ip2"))
	other := handlertest.UniqueEmail(t, "ip3")
	resp, _ = env.PostForm(t, c, "/login", url.Values{"email": {other}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("6th code from one IP = %d, want 429", resp.StatusCode)
	}
	if env.SMTP.Count(other) != 0 {
		t.Error("a code was mailed past the per-IP limit")
	}
}

func TestSendCode_NoAccountEnumeration(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	known := handlertest.UniqueEmail(t, "known")
	unknown := handlertest.UniqueEmail(t, "unknown")
	env.SignIn(t, known)
	env.Clock.Advance(time.Minute)

	respK, bodyK := env.PostForm(t, env.Client(), "/login", url.Values{"email": {known}})
	respU, bodyU := env.PostForm(t, env.Client(), "/login", url.Values{"email": {unknown}})
	if respK.StatusCode != respU.StatusCode {
		t.Fatalf("status known = %d, unknown = %d; want equal", respK.StatusCode, respU.StatusCode)
	}
	if strings.ReplaceAll(bodyK, known, "X") != strings.ReplaceAll(bodyU, unknown, "X") {
		t.Error("the page for a known email differs from the page for an unknown one")
	}
}

func TestSignIn_RotatesSessionID(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "rotate")
	c := env.SignIn(t, email)
	base, _ := url.Parse(env.BaseURL)
	before := c.Jar.Cookies(base)

	env.Clock.Advance(time.Minute)
	code := env.RequestCode(t, c, email)
	env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}})
	after := c.Jar.Cookies(base)
	if len(before) != 1 || len(after) != 1 || before[0].Value == after[0].Value {
		t.Fatalf("session cookie not replaced at sign-in")
	}
	if n := sessionCount(t, env, email); n != 1 {
		t.Errorf("sessions after signing in twice in one browser = %d, want 1 (old one deleted)", n)
	}
	// The old cookie no longer signs anyone in.
	stale := env.Client()
	stale.Jar.SetCookies(base, before)
	resp, _ := env.Get(t, stale, "/dashboard")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("old session cookie = %d, want 303 to /login", resp.StatusCode)
	}
}

func TestSessionCookie_Attributes(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "cookie")
	c := env.Client()
	code := env.RequestCode(t, c, email)
	resp, _ := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}})
	raw := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"authgpts_session=", "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(raw, want) {
			t.Errorf("Set-Cookie %q lacks %s", raw, want)
		}
	}
	if strings.Contains(raw, "Secure") {
		t.Error("Secure set on an http base URL; browsers would drop the cookie")
	}
}

func TestSignOut_DeletesSessionRow(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "out")
	c := env.SignIn(t, email)
	if sessionCount(t, env, email) != 1 {
		t.Fatal("no session row after sign-in")
	}
	base, _ := url.Parse(env.BaseURL)
	cookies := c.Jar.Cookies(base)
	resp, _ := env.PostForm(t, c, "/logout", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /logout = %d, want 303", resp.StatusCode)
	}
	if n := sessionCount(t, env, email); n != 0 {
		t.Errorf("session rows after sign-out = %d, want 0", n)
	}
	replay := env.Client()
	replay.Jar.SetCookies(base, cookies)
	resp, _ = env.Get(t, replay, "/dashboard")
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("replayed cookie after sign-out = %d, want 303 to /login", resp.StatusCode)
	}
}

func TestReturnTo_OpenRedirectAttemptsGoToDashboard(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	attempts := []string{
		"//evil.com", "https://evil.com", "/\\evil.com", "\\\\evil.com", "/%2F%2Fevil.com", "%2F%2Fevil.com",
		"/%5Cevil.com", "http:evil.com", "javascript:alert(1)", "/%252F%252Fevil.com", " //evil.com", "/\t/evil.com",
	}
	for _, rt := range attempts {
		t.Run(rt, func(t *testing.T) {
			email := handlertest.UniqueEmail(t, "redir")
			c := env.Client()
			code := env.RequestCode(t, c, email)
			resp, _ := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}, "return_to": {rt}})
			if loc := resp.Header.Get("Location"); loc != "/dashboard" {
				t.Errorf("return_to %q redirected to %q, want /dashboard", rt, loc)
			}
		})
	}
	t.Run("local path kept", func(t *testing.T) {
		email := handlertest.UniqueEmail(t, "local")
		c := env.Client()
		code := env.RequestCode(t, c, email)
		want := "/oauth/authorize?client_id=x&state=y"
		resp, _ := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}, "return_to": {want}})
		if loc := resp.Header.Get("Location"); loc != want {
			t.Errorf("Location = %q, want %q", loc, want)
		}
	})
}

func TestCrossOriginPostRefused(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "csrf")
	c := env.SignIn(t, email)
	req, _ := http.NewRequest(http.MethodPost, env.BaseURL+"/logout", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin POST /logout = %d, want 403", resp.StatusCode)
	}
	if sessionCount(t, env, email) != 1 {
		t.Error("the refused cross-origin request still signed the user out")
	}
}

func TestLogs_NeverContainTheCode(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	email := handlertest.UniqueEmail(t, "logs")
	c := env.Client()
	code := env.RequestCode(t, c, email)
	env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {"999999"}})
	env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}, "return_to": {"/account?code=" + code}})
	logs := env.Logs.String()
	if !strings.Contains(logs, `"path":"/login/verify"`) {
		t.Fatal("request logs were not captured")
	}
	if strings.Contains(logs, code) {
		t.Errorf("a log line holds the sign-in code")
	}
}

func TestBadInput_ClearErrorsAndNothingWritten(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	c := env.Client()
	countOTPs := func() int {
		var n int
		_ = env.Store.DB().Get(&n, `SELECT count(*) FROM otps`)
		return n
	}
	tests := []struct {
		name       string
		path       string
		form       url.Values
		wantStatus int
		wantText   string
	}{
		{"malformed email", "/login", url.Values{"email": {"not-an-email"}}, 422, "Enter a valid email address"},
		{"email with display name", "/login", url.Values{"email": {"Eve <eve@example.com>"}}, 422, "Enter a valid email address"},
		{"two emails", "/login", url.Values{"email": {"a@example.com,b@example.com"}}, 422, "Enter a valid email address"},
		{"empty email", "/login", url.Values{"email": {""}}, 422, "Enter a valid email address"},
		{"empty code", "/login/verify", url.Values{"email": {"a@example.com"}, "code": {""}}, 422, "Enter the 6 digits"},
		{"non-numeric code", "/login/verify", url.Values{"email": {"a@example.com"}, "code": {"12a456"}}, 422, "Enter the 6 digits"},
		{"seven digits", "/login/verify", url.Values{"email": {"a@example.com"}, "code": {"1234567"}}, 422, "Enter the 6 digits"},
		{"oversized body", "/login", url.Values{"email": {strings.Repeat("a", 70<<10) + "@example.com"}}, 413, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := env.PostForm(t, c, tt.path, tt.form)
			if resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantText) {
				t.Errorf("POST %s = %d, want %d with %q", tt.path, resp.StatusCode, tt.wantStatus, tt.wantText)
			}
		})
	}
	if n := countOTPs(); n != 0 {
		t.Errorf("codes stored after bad input = %d, want 0", n)
	}
	if len(env.SMTP.Messages()) != 0 {
		t.Errorf("mail sent after bad input")
	}
}

func TestAdminEmail_SeesAdminLink(t *testing.T) {
	t.Parallel()
	admin := handlertest.UniqueEmail(t, "admin")
	env := handlertest.New(t, func(d *handlers.Config) { d.AdminEmails = []string{admin} })
	_, body := env.Get(t, env.SignIn(t, admin), "/dashboard")
	if !strings.Contains(body, `data-testid="admin-link"`) {
		t.Error("admin does not see the Admin link")
	}
	_, body = env.Get(t, env.SignIn(t, handlertest.UniqueEmail(t, "dev")), "/dashboard")
	if strings.Contains(body, `data-testid="admin-link"`) {
		t.Error("a non-admin sees the Admin link")
	}
}

func TestSecurityHeaders_OnPages(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	for _, path := range []string{"/login", "/signup", "/does-not-exist"} {
		resp, _ := env.Get(t, env.Client(), path)
		h := resp.Header
		if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") == "" {
			t.Errorf("%s: security headers missing: %v", path, h)
		}
	}
}

func TestSignedOut_RedirectsToLoginWithReturnTo(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	resp, _ := env.Get(t, env.Client(), "/account")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?return_to=%2Faccount" {
		t.Fatalf("GET /account signed out = %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestDevMailbox_OnlyInDevelopment(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	resp, _ := env.Get(t, env.Client(), "/dev/mail")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /dev/mail without a dev mailbox = %d, want 404", resp.StatusCode)
	}
}

func TestSessionCookie_SecureOnHTTPS(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t, func(d *handlers.Config) {
		d.BaseURL, _ = url.Parse("https://auth.example.test")
	})
	email := handlertest.UniqueEmail(t, "secure")
	c := env.Client()
	code := env.RequestCode(t, c, email)
	resp, _ := env.PostForm(t, c, "/login/verify", url.Values{"email": {email}, "code": {code}})
	raw := resp.Header.Get("Set-Cookie")
	if !strings.Contains(raw, "Secure") || !strings.Contains(raw, "HttpOnly") {
		t.Errorf("Set-Cookie %q on an https base URL, want Secure and HttpOnly", raw)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS header on an https deployment")
	}
}

func TestPerIPLimit_UsesForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	limits := store.OTPSendLimits{ResendAfter: time.Second, Window: time.Hour, PerEmail: 10, PerIP: 1}
	send := func(env *handlertest.Env, forwardedFor string) int {
		req, _ := http.NewRequest(http.MethodPost, env.BaseURL+"/login", strings.NewReader(url.Values{"email": {handlertest.UniqueEmail(t, "ip")}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", forwardedFor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Behind a trusted load balancer (the test's loopback), each client has its own limit.
	behindLB := handlertest.New(t, func(d *handlers.Config) { d.OTPLimits, d.TrustedProxies = limits, []string{"127.0.0.1/32", "::1/128"} })
	if a, b := send(behindLB, "203.0.113.1"), send(behindLB, "203.0.113.2"); a != http.StatusOK || b != http.StatusOK {
		t.Errorf("two clients behind a trusted proxy = %d, %d; want both 200", a, b)
	}
	if c := send(behindLB, "203.0.113.1"); c != http.StatusTooManyRequests {
		t.Errorf("the same client again = %d, want 429", c)
	}
	// Without trusted proxies a forged header changes nothing: the connection's IP counts.
	direct := handlertest.New(t, func(d *handlers.Config) { d.OTPLimits = limits })
	if a, b := send(direct, "203.0.113.1"), send(direct, "203.0.113.2"); a != http.StatusOK || b != http.StatusTooManyRequests {
		t.Errorf("forged X-Forwarded-For without trusted proxies = %d, %d; want 200 then 429", a, b)
	}
}

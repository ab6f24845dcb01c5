package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

var testPolicy = AuthorizePolicy{
	Scopes:        []string{"openid", "email", "profile", "orders:read"},
	DefaultScopes: []string{"openid", "email"},
}

func authzQuery(kv ...string) url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {"agpt_c"}, "redirect_uri": {"https://chatgpt.com/cb"}, "state": {"s1"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "-" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

func TestParseAuthorizationRequest(t *testing.T) {
	challenge := S256Challenge(strings.Repeat("v", 43))
	tests := []struct {
		name       string
		q          url.Values
		policy     AuthorizePolicy
		wantErr    error
		wantScopes []string
	}{
		{"ChatGPT: empty scope means defaults", authzQuery("scope", ""), testPolicy, nil, []string{"openid", "email"}},
		{"explicit scopes", authzQuery("scope", "orders:read  openid"), testPolicy, nil, []string{"orders:read", "openid"}},
		{"unknown scope", authzQuery("scope", "openid admin"), testPolicy, ErrInvalidScope, nil},
		{"bad scope characters", authzQuery("scope", `open"id`), testPolicy, ErrInvalidScope, nil},
		{"token response type", authzQuery("response_type", "token"), testPolicy, ErrUnsupportedResponseType, nil},
		{"code id_token", authzQuery("response_type", "code id_token"), testPolicy, ErrUnsupportedResponseType, nil},
		{"missing response type", authzQuery("response_type", "-"), testPolicy, ErrInvalidRequest, nil},
		{"S256", authzQuery("code_challenge", challenge, "code_challenge_method", "S256"), testPolicy, nil, []string{"openid", "email"}},
		{"plain", authzQuery("code_challenge", challenge, "code_challenge_method", "plain"), testPolicy, ErrInvalidRequest, nil},
		{"challenge without method", authzQuery("code_challenge", challenge), testPolicy, ErrInvalidRequest, nil},
		{"method without challenge", authzQuery("code_challenge_method", "S256"), testPolicy, ErrInvalidRequest, nil},
		{"malformed challenge", authzQuery("code_challenge", "short", "code_challenge_method", "S256"), testPolicy, ErrInvalidRequest, nil},
		{"public client without PKCE", authzQuery(), AuthorizePolicy{RequirePKCE: true, Scopes: testPolicy.Scopes}, ErrInvalidRequest, nil},
		{"prompt none with login", authzQuery("prompt", "none login"), testPolicy, ErrInvalidRequest, nil},
		{"unknown prompt", authzQuery("prompt", "always"), testPolicy, ErrInvalidRequest, nil},
		{"negative max_age", authzQuery("max_age", "-1"), testPolicy, ErrInvalidRequest, nil},
		{"request object", authzQuery("request", "eyJ..."), testPolicy, ErrInvalidRequest, nil},
		{"fragment response mode", authzQuery("response_mode", "fragment"), testPolicy, ErrInvalidRequest, nil},
		{"long nonce", authzQuery("nonce", strings.Repeat("n", 513)), testPolicy, ErrInvalidRequest, nil},
		{"long state", authzQuery("state", strings.Repeat("s", 2049)), testPolicy, ErrInvalidRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseAuthorizationRequest(tt.q, "agpt_c", "https://chatgpt.com/cb", tt.policy)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if len(tt.q.Get("state")) <= maxStateLength && req.State != tt.q.Get("state") {
					t.Errorf("State = %q with the error, want it kept for the redirect", req.State)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !slices.Equal(req.Scopes, tt.wantScopes) {
				t.Errorf("Scopes = %v, want %v", req.Scopes, tt.wantScopes)
			}
		})
	}
}

func TestParseAuthorizationRequest_RepeatedParameter(t *testing.T) {
	q := authzQuery()
	q.Add("scope", "openid")
	q.Add("scope", "email")
	if _, err := ParseAuthorizationRequest(q, "agpt_c", "https://chatgpt.com/cb", testPolicy); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("repeated scope: err = %v, want invalid_request", err)
	}
	q = authzQuery()
	q.Add("client_id", "agpt_d")
	if _, _, err := ParseAuthorizeTarget(q); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("repeated client_id: err = %v, want invalid_request", err)
	}
}

func TestResolveRedirectURI(t *testing.T) {
	one := []string{"https://chatgpt.com/cb"}
	two := []string{"https://chatgpt.com/cb", "https://chat.openai.com/cb"}
	tests := []struct {
		registered []string
		requested  string
		want       string
		ok         bool
	}{
		{one, "", "https://chatgpt.com/cb", true},
		{two, "", "", false},
		{two, "https://chat.openai.com/cb", "https://chat.openai.com/cb", true},
		{two, "https://chat.openai.com/cb/", "", false},
		{[]string{"http://127.0.0.1/cb"}, "http://127.0.0.1:8123/cb", "http://127.0.0.1:8123/cb", true},
		{nil, "", "", false},
	}
	for _, tt := range tests {
		got, ok := ResolveRedirectURI(tt.registered, tt.requested)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ResolveRedirectURI(%v, %q) = %q, %v; want %q, %v", tt.registered, tt.requested, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAuthorizationRedirects_CarryIssAndKeepRegisteredQuery(t *testing.T) {
	got := AuthorizationCodeRedirect("https://app.example/cb?tenant=a", "agc_x", "s 1", "https://auth.example.com")
	if got != "https://app.example/cb?tenant=a&code=agc_x&iss=https%3A%2F%2Fauth.example.com&state=s+1" {
		t.Errorf("code redirect = %q", got)
	}
	got = AuthorizationErrorRedirect("https://app.example/cb", ErrAccessDenied.WithDescription("no"), "", "https://auth.example.com")
	u, _ := url.Parse(got)
	if q := u.Query(); q.Get("error") != "access_denied" || q.Get("iss") != "https://auth.example.com" || q.Has("state") {
		t.Errorf("error redirect = %q", got)
	}
	got = AuthorizationErrorRedirect("https://app.example/cb", errors.New("db down: secret"), "s", "https://auth.example.com")
	if strings.Contains(got, "secret") || !strings.Contains(got, "error=server_error") {
		t.Errorf("unexpected error leaked into the redirect: %q", got)
	}
}

func TestNeedsLoginAndReauthenticationQuery(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	q := authzQuery("prompt", "login consent")
	req, err := ParseAuthorizationRequest(q, "agpt_c", "https://chatgpt.com/cb", testPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if !req.NeedsLogin(now.Add(-time.Second), now) {
		t.Fatal("prompt=login does not ask for a sign-in")
	}
	back := ReauthenticationQuery(q, now)
	if back.Get("prompt") != "consent" || back.Get(LoginAfterParam) != "1800000000" {
		t.Fatalf("ReauthenticationQuery = %v", back)
	}
	again, err := ParseAuthorizationRequest(back, "agpt_c", "https://chatgpt.com/cb", testPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if again.NeedsLogin(now.Add(-time.Second), now) != true || again.NeedsLogin(now, now) != false {
		t.Error("login_after: a sign-in before it must not count, one at it must")
	}
	ma, _ := ParseAuthorizationRequest(authzQuery("max_age", "300"), "agpt_c", "https://chatgpt.com/cb", testPolicy)
	if ma.NeedsLogin(now.Add(-299*time.Second), now) || !ma.NeedsLogin(now.Add(-301*time.Second), now) {
		t.Error("max_age=300 misjudged")
	}
}

func TestParseClientCredentials(t *testing.T) {
	basic := func(id, secret string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		return r
	}
	plain, _ := http.NewRequest(http.MethodPost, "/", nil)
	tests := []struct {
		name       string
		r          *http.Request
		form       url.Values
		wantID     string
		wantMethod string
		wantErr    error
	}{
		{"basic", basic("agpt_a", "agsec_s"), url.Values{}, "agpt_a", AuthMethodSecretBasic, nil},
		{"basic + same client_id", basic("agpt_a", "agsec_s"), url.Values{"client_id": {"agpt_a"}}, "agpt_a", AuthMethodSecretBasic, nil},
		{"basic + other client_id", basic("agpt_a", "agsec_s"), url.Values{"client_id": {"agpt_b"}}, "agpt_a", AuthMethodSecretBasic, ErrInvalidRequest},
		{"basic + body secret", basic("agpt_a", "agsec_s"), url.Values{"client_secret": {"agsec_s"}}, "agpt_a", AuthMethodSecretBasic, ErrInvalidRequest},
		{"post", plain, url.Values{"client_id": {"agpt_a"}, "client_secret": {"agsec_s"}}, "agpt_a", AuthMethodSecretPost, nil},
		{"none", plain, url.Values{"client_id": {"agpt_a"}}, "agpt_a", AuthMethodNone, nil},
		{"nothing", plain, url.Values{}, "", "", ErrInvalidClient},
		{"special characters form-encoded", basic("id:with:colons", "se cret+%"), url.Values{}, "id:with:colons", AuthMethodSecretBasic, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseClientCredentials(tt.r, tt.form)
			if !errors.Is(err, tt.wantErr) && !(err == nil && tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if c.ID != tt.wantID || c.Method != tt.wantMethod {
				t.Errorf("creds = %q %q, want %q %q", c.ID, c.Method, tt.wantID, tt.wantMethod)
			}
		})
	}
	bad, _ := http.NewRequest(http.MethodPost, "/", nil)
	bad.Header.Set("Authorization", "Basic !!!")
	if c, err := ParseClientCredentials(bad, url.Values{}); !errors.Is(err, ErrInvalidClient) || !c.BasicUsed() {
		t.Errorf("malformed Basic: %v, basic used %v; want invalid_client with the Basic challenge", err, c.BasicUsed())
	}
}

func TestParseRequestBody(t *testing.T) {
	post := func(ct, body string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "/token?code=from-query", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		return r
	}
	f, err := ParseRequestBody(post("application/x-www-form-urlencoded; charset=utf-8", "grant_type=authorization_code&code=abc"))
	if err != nil || f.Get("code") != "abc" {
		t.Errorf("form = %v, %v", f, err)
	}
	f, err = ParseRequestBody(post("application/json", `{"grant_type":"refresh_token","refresh_token":"agr_x","n":5}`))
	if err != nil || f.Get("refresh_token") != "agr_x" || f.Get("n") != "5" {
		t.Errorf("json = %v, %v", f, err)
	}
	for name, r := range map[string]*http.Request{
		"repeated":    post("application/x-www-form-urlencoded", "code=a&code=b"),
		"json array":  post("application/json", `{"scope":["a"]}`),
		"text/plain":  post("text/plain", "code=a"),
		"broken json": post("application/json", `{"code":`),
		"query only":  post("application/x-www-form-urlencoded", ""),
	} {
		f, err := ParseRequestBody(r)
		if name == "query only" {
			if err != nil || f.Get("code") != "" {
				t.Errorf("%s: %v %v, want the query ignored", name, f, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want invalid_request", name, err)
		}
	}
}

func TestConsentTicket(t *testing.T) {
	s := NewTicketSigner([]byte(strings.Repeat("k", 32)))
	now := time.Unix(1_800_000_000, 0)
	tk := ConsentTicket{UserID: "u1", ClientID: "c1", RedirectURI: "https://x/cb", Scopes: []string{"openid"}, State: "s", Expiry: now.Add(time.Minute).Unix()}
	raw, err := s.Sign(tk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Open(raw, now)
	if err != nil || got.UserID != "u1" || got.State != "s" {
		t.Fatalf("Open = %+v, %v", got, err)
	}
	if _, err := s.Open(raw, now.Add(time.Minute)); err == nil {
		t.Error("an expired ticket opened")
	}
	body, sig, _ := strings.Cut(raw, ".")
	forged := strings.Replace(body, body[:4], "AAAA", 1) + "." + sig
	if _, err := s.Open(forged, now); err == nil {
		t.Error("a modified ticket opened")
	}
	other := NewTicketSigner([]byte(strings.Repeat("o", 32)))
	if _, err := other.Open(raw, now); err == nil {
		t.Error("a ticket opened under another key")
	}
}

func TestApprovedScopesAndMergeConsent(t *testing.T) {
	if got := ApprovedScopes([]string{"openid", "email", "profile"}, []string{"profile", "admin"}); !slices.Equal(got, []string{"openid", "profile"}) {
		t.Errorf("ApprovedScopes = %v: openid is required, only requested scopes count", got)
	}
	got := MergeConsent([]string{"openid", "email", "orders"}, []string{"openid", "email"}, []string{"openid"})
	if !slices.Equal(got, []string{"openid", "orders"}) {
		t.Errorf("MergeConsent = %v: email was switched off now, orders was not asked about", got)
	}
}

func TestRotator_SuccessorIsDeterministicAndKeyed(t *testing.T) {
	a := NewRotator([]byte(strings.Repeat("a", 32)))
	b := NewRotator([]byte(strings.Repeat("b", 32)))
	tok := NewToken(PrefixRefreshToken)
	s1, s2 := a.Successor(tok), a.Successor(tok)
	if s1 != s2 || !strings.HasPrefix(s1, PrefixRefreshToken) || len(s1) != len(tok) {
		t.Errorf("successors %q %q", s1, s2)
	}
	if b.Successor(tok) == s1 || a.Successor(s1) == s1 {
		t.Error("successor does not depend on the key, or is a fixed point")
	}
}

func TestNewSplitKeySet_SignsAccessWithES256AndIDWithRS256(t *testing.T) {
	es, rs := testKey(t, AlgES256, 0), testKey(t, AlgRS256, 1)
	ks, err := NewSplitKeySet(es, rs)
	if err != nil {
		t.Fatal(err)
	}
	at, err := ks.SignAccessToken(testAccessClaims(testNow))
	if err != nil {
		t.Fatal(err)
	}
	id, err := ks.SignIDToken(IDClaims{Issuer: testIssuer, Subject: "u", Audience: "c", IssuedAt: testNow, Expiry: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if TokenKeyID(at) != es.ID || TokenKeyID(id) != rs.ID {
		t.Errorf("access token kid %q, ID token kid %q; want %q and %q", TokenKeyID(at), TokenKeyID(id), es.ID, rs.ID)
	}
	if _, err := ks.VerifyAccessToken(at, testNow, testIssuer); err != nil {
		t.Errorf("verify: %v", err)
	}
	if !ks.HasKey(rs.ID) || !ks.HasKey(es.ID) || ks.HasKey("nope") || len(ks.KeyIDs()) != 2 {
		t.Errorf("HasKey/KeyIDs wrong: %v", ks.KeyIDs())
	}
	if TokenKeyID("garbage") != "" {
		t.Error("TokenKeyID of garbage")
	}
}

func TestNewServerMetadata(t *testing.T) {
	m := NewServerMetadata("https://auth.example.com", AlgRS256)
	if m.Issuer != "https://auth.example.com" || m.TokenEndpoint != "https://auth.example.com/oauth/token" ||
		!slices.Equal(m.CodeChallengeMethodsSupported, []string{"S256"}) || !m.AuthorizationResponseIssParameterSupported ||
		!slices.Contains(m.TokenEndpointAuthMethodsSupported, "none") {
		t.Errorf("metadata = %+v", m)
	}
}

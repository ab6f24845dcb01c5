package signin_test

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authgpts/authgpts/oauth/upstream"
)

// loginPage is a developer's own web app: it verifies AuthGPTs' login request with the
// signing secret, "signs the user in" and sends the browser back with an assertion
// that mutate may spoil.
type loginPage struct {
	*httptest.Server
	mu      sync.Mutex
	secret  []byte
	now     func() time.Time
	userID  string
	mutate  func(c *jwt.Claims, extra map[string]any) []byte // returns the signing key to use (nil: the secret)
	lastJTI string
}

func newLoginPage(t *testing.T, now func() time.Time) *loginPage {
	p := &loginPage{now: now, userID: "user-4711"}
	p.Server = httptest.NewTLSServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *loginPage) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	tok, err := jwt.ParseSigned(r.URL.Query().Get("login_request"), []jose.SignatureAlgorithm{jose.HS256})
	var req struct {
		jwt.Claims
		State        string `json:"state"`
		Nonce        string `json:"nonce"`
		ReturnTo     string `json:"return_to"`
		AssertionAud string `json:"assertion_aud"`
	}
	if err != nil || tok.Claims(p.secret, &req) != nil ||
		req.Claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{p.URL + "/login"}, Time: p.now()}, 0) != nil {
		http.Error(w, "bad login request", http.StatusBadRequest)
		return
	}
	now := p.now()
	c := jwt.Claims{Subject: p.userID, Audience: jwt.Audience{req.AssertionAud}, ID: "jti-" + randomID(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute))}
	extra := map[string]any{"nonce": req.Nonce, "email": "Person@Example.com", "email_verified": true}
	key := p.secret
	if p.mutate != nil {
		if k := p.mutate(&c, extra); k != nil {
			key = k
		}
	}
	p.lastJTI = c.ID
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key}, nil)
	assertion, _ := jwt.Signed(signer).Claims(c).Claims(extra).Serialize()
	back, _ := url.Parse(req.ReturnTo)
	q := back.Query()
	q.Set("state", req.State)
	q.Set("assertion", assertion)
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

func randomID() string { return strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "") }

var ownSecretRE = regexp.MustCompile(`agown_[A-Za-z0-9_-]{43}`)

// useOwn points down's app at page and keeps the signing secret shown once.
func (w *fedWorld) useOwn(t *testing.T, page *loginPage) {
	t.Helper()
	resp, body := w.saveSource(t, url.Values{"identity_source": {"own"}, "own_login_url": {page.URL + "/login"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("save own login = %d: %.600s", resp.StatusCode, body)
	}
	secret := ownSecretRE.FindString(body)
	if secret == "" {
		t.Fatalf("no signing secret shown after switching to the own login page")
	}
	page.secret = []byte(secret)
	_, again := w.down.Get(t, w.dev, "/dashboard/apps/"+w.downApp.App.Slug)
	if strings.Contains(again, secret) {
		t.Error("the signing secret is shown again on the app page")
	}
	if !strings.Contains(again, `data-testid="own-snippet"`) || !strings.Contains(again, upstream.OwnIssuer(w.down.BaseURL, w.downApp.App.ID)) {
		t.Error("the app page lacks the snippet or the assertion audience")
	}
}

// ownRound runs the GPT's flow through the own login page and returns the status and
// body of down's own-login callback.
func (w *fedWorld) ownRound(t *testing.T, page *loginPage, state string) (int, string) {
	t.Helper()
	b := w.browser(t)
	b.Transport.(*http.Transport).TLSClientConfig.RootCAs = pagePool(page)
	resp, _ := get(t, b, w.gpt.AuthCodeURL(state))
	resp, _ = get(t, b, location(t, resp))
	toPage := location(t, resp)
	if !strings.HasPrefix(toPage, page.URL+"/login?login_request=") {
		t.Fatalf("/login/upstream sent the browser to %s, want the own login page", toPage)
	}
	resp, body := get(t, b, toPage)
	cb := location(t, resp)
	if !strings.HasPrefix(cb, w.down.BaseURL+upstream.OwnCallbackPath+"?") {
		t.Fatalf("login page answered %d %s: %s", resp.StatusCode, cb, body)
	}
	resp, body = get(t, b, cb)
	return resp.StatusCode, body
}

func pagePool(p *loginPage) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Certificate())
	return pool
}

func TestOwnLogin_AssertionChecks(t *testing.T) {
	w := newFedWorld(t)
	page := newLoginPage(t, w.down.Clock.Now)
	w.useOwn(t, page)

	tests := []struct {
		name   string
		mutate func(c *jwt.Claims, extra map[string]any) []byte
		reason string
	}{
		{"wrong signature", func(*jwt.Claims, map[string]any) []byte {
			return []byte("agown_not-the-apps-secret-not-the-apps-secret")
		}, "not signed"},
		{"expired", func(c *jwt.Claims, _ map[string]any) []byte {
			c.IssuedAt, c.Expiry = jwt.NewNumericDate(w.down.Clock.Now().Add(-10*time.Minute)), jwt.NewNumericDate(w.down.Clock.Now().Add(-time.Minute))
			return nil
		}, "expired"},
		{"lives longer than 5 minutes", func(c *jwt.Claims, _ map[string]any) []byte {
			c.Expiry = jwt.NewNumericDate(w.down.Clock.Now().Add(30 * time.Minute))
			return nil
		}, "expired"},
		{"wrong nonce", func(_ *jwt.Claims, extra map[string]any) []byte { extra["nonce"] = "someone-elses"; return nil }, "nonce"},
		{"wrong aud", func(c *jwt.Claims, _ map[string]any) []byte {
			c.Audience = jwt.Audience{upstream.OwnIssuer(w.down.BaseURL, "00000000-0000-0000-0000-000000000000")}
			return nil
		}, "another app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page.mutate = tt.mutate
			before, logAt := countFederated(t, w.down), len(w.down.Logs.String())
			status, body := w.ownRound(t, page, "own-"+strings.ReplaceAll(tt.name, " ", "-"))
			if status != http.StatusBadRequest {
				t.Fatalf("own-login callback = %d, want 400: %.300s", status, body)
			}
			if countFederated(t, w.down) != before {
				t.Error("a refused assertion signed someone in")
			}
			if !strings.Contains(w.down.Logs.String()[logAt:], tt.reason) {
				t.Errorf("log does not name the reason %q", tt.reason)
			}
		})
	}
}

func TestOwnLogin_JourneyAndReplayedJTI(t *testing.T) {
	w := newFedWorld(t)
	page := newLoginPage(t, w.down.Clock.Now)
	w.useOwn(t, page)

	b := w.browser(t)
	b.Transport.(*http.Transport).TLSClientConfig.RootCAs = pagePool(page)
	resp, _ := get(t, b, w.gpt.AuthCodeURL("own-ok"))
	resp, _ = get(t, b, location(t, resp))
	resp, _ = get(t, b, location(t, resp))
	tok := w.fromCallback(t, b, location(t, resp), "own-ok")
	claims, err := w.down.Instance.Keys.KeySet().VerifyAccessToken(tok.AccessToken, w.down.Clock.Now(), w.down.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if claims.PublicSubject() != "user-4711" || claims.IdP != upstream.OwnIssuer(w.down.BaseURL, w.downApp.App.ID) {
		t.Errorf("own-login token sub %q idp %q", claims.PublicSubject(), claims.IdP)
	}
	u, _ := w.down.Store.UserByID(t.Context(), claims.Subject)
	if u.Email != "person@example.com" {
		t.Errorf("verified email from the assertion = %q", u.Email)
	}

	// A second flow whose assertion reuses the first one's jti is refused.
	used := page.lastJTI
	page.mutate = func(c *jwt.Claims, _ map[string]any) []byte { c.ID = used; return nil }
	if status, body := w.ownRound(t, page, "own-replay"); status != http.StatusBadRequest {
		t.Fatalf("replayed jti = %d, want 400: %.300s", status, body)
	}
	if !strings.Contains(w.down.Logs.String(), "own-login assertion replayed") {
		t.Error("the replay was not refused as a replay")
	}
}

// The gateway forwards the upstream subject and its issuer, so the developer's API
// recognises its own users; usage and credits still count the local user.
func TestOwnLogin_GatewayForwardsSubjectAndIssuer(t *testing.T) {
	w := newFedWorldWith(t, true)
	var mu sync.Mutex
	var got http.Header
	api := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		_, _ = rw.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(api.Close)
	if _, err := w.down.Store.DB().Exec(`UPDATE apps SET upstream_url = $1 WHERE id = $2`, api.URL, w.downApp.App.ID); err != nil {
		t.Fatal(err)
	}
	page := newLoginPage(t, w.down.Clock.Now)
	w.useOwn(t, page)
	b := w.browser(t)
	b.Transport.(*http.Transport).TLSClientConfig.RootCAs = pagePool(page)
	resp, _ := get(t, b, w.gpt.AuthCodeURL("gw"))
	resp, _ = get(t, b, location(t, resp))
	resp, _ = get(t, b, location(t, resp))
	tok := w.fromCallback(t, b, location(t, resp), "gw")

	req, _ := http.NewRequest(http.MethodGet, w.down.BaseURL+"/gw/"+w.downApp.App.Slug+"/hello", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("X-AuthGPTs-Issuer", "https://forged.example") // callers can never set identity headers
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gateway call = %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Get("X-AuthGPTs-User") != "user-4711" || got.Get("X-AuthGPTs-Issuer") != upstream.OwnIssuer(w.down.BaseURL, w.downApp.App.ID) {
		t.Errorf("identity headers User %q Issuer %q; want the upstream subject and its issuer", got.Get("X-AuthGPTs-User"), got.Get("X-AuthGPTs-Issuer"))
	}
}

package signin_test

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/store"
)

// gitHub is a small but real OAuth 2.0 server with GitHub's shape: /login/oauth/authorize
// issues single-use codes bound to the client, redirect URI and PKCE challenge for the
// user "signed in" there; /login/oauth/access_token exchanges them (client credentials
// in the body, form-encoded answer as GitHub's default); /user and /user/emails answer
// for the bearer of a token it issued.
type gitHub struct {
	*httptest.Server
	clientID, secret, redirectURI string

	mu     sync.Mutex
	user   ghUser
	codes  map[string]*ghCode
	tokens map[string]ghUser
}

type ghUser struct {
	ID     int64
	Login  string
	Emails []map[string]any
}

type ghCode struct {
	clientID, redirectURI, challenge string
	user                             ghUser
	used                             bool
}

func newGitHub(t *testing.T, redirectURI string) *gitHub {
	g := &gitHub{clientID: "Iv1.test" + ghRandom()[:8], secret: "ghsecret_" + ghRandom(), redirectURI: redirectURI,
		codes: map[string]*ghCode{}, tokens: map[string]ghUser{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.accessToken)
	mux.HandleFunc("GET /user", g.api(func(u ghUser) any { return map[string]any{"id": u.ID, "login": u.Login} }))
	mux.HandleFunc("GET /user/emails", g.api(func(u ghUser) any { return u.Emails }))
	g.Server = httptest.NewTLSServer(mux)
	t.Cleanup(g.Close)
	return g
}

func ghRandom() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (g *gitHub) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != g.clientID || q.Get("redirect_uri") != g.redirectURI {
		http.Error(w, "The redirect_uri MUST match the registered callback URL for this application.", http.StatusBadRequest)
		return
	}
	if q.Get("state") == "" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	code := ghRandom()
	g.mu.Lock()
	g.codes[code] = &ghCode{clientID: g.clientID, redirectURI: g.redirectURI, challenge: q.Get("code_challenge"), user: g.user}
	g.mu.Unlock()
	http.Redirect(w, r, g.redirectURI+"?"+url.Values{"code": {code}, "state": {q.Get("state")}}.Encode(), http.StatusFound)
}

func (g *gitHub) accessToken(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	fail := func(code string) {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		_, _ = w.Write([]byte(url.Values{"error": {code}}.Encode()))
	}
	if r.PostForm.Get("client_id") != g.clientID || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("client_secret")), []byte(g.secret)) != 1 {
		fail("incorrect_client_credentials")
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.codes[r.PostForm.Get("code")]
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if c == nil || c.used || c.redirectURI != r.PostForm.Get("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
		fail("bad_verification_code")
		return
	}
	c.used = true
	tok := "gho_" + ghRandom()
	g.tokens[tok] = c.user
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
	_, _ = w.Write([]byte(url.Values{"access_token": {tok}, "token_type": {"bearer"}, "scope": {"read:user,user:email"}}.Encode()))
}

func (g *gitHub) api(view func(ghUser) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		g.mu.Lock()
		u, ok := g.tokens[strings.TrimPrefix(strings.TrimPrefix(auth, "Bearer "), "token ")]
		g.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(view(u))
	}
}

func newGitHubWorld(t *testing.T) (*fedWorld, *gitHub) {
	t.Helper()
	var gh *gitHub
	w := newFedWorld(t, func(d *handlers.Config) {
		gh = newGitHub(t, d.BaseURL.String()+"/login/upstream/callback")
		pool := x509.NewCertPool()
		pool.AddCert(gh.Certificate())
		// The SSRF guard lets exactly this local server through, as cimd_test does.
		d.Fetcher = safefetch.New(safefetch.Options{AllowAddrs: []string{gh.Listener.Addr().String()}, RootCAs: pool})
		d.GitHubWebURL, d.GitHubAPIURL = gh.URL, gh.URL
	})
	w.pool.AddCert(gh.Certificate()) // the browser visits it too
	resp, body := w.saveSource(t, url.Values{"identity_source": {"github"}, "upstream_client_id": {gh.clientID}, "upstream_client_secret": {gh.secret}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("save github = %d: %.500s", resp.StatusCode, body)
	}
	return w, gh
}

func (w *fedWorld) gitHubRound(t *testing.T, gh *gitHub, state string) (store.User, *http.Client) {
	t.Helper()
	b := w.browser(t)
	resp, _ := get(t, b, w.gpt.AuthCodeURL(state))
	resp, _ = get(t, b, location(t, resp))
	toGH := location(t, resp)
	if !strings.HasPrefix(toGH, gh.URL+"/login/oauth/authorize?") {
		t.Fatalf("sent to %s, want GitHub's authorize", toGH)
	}
	resp, body := get(t, b, toGH)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GitHub authorize = %d: %s", resp.StatusCode, body)
	}
	tok := w.fromCallback(t, b, location(t, resp), state)
	claims, err := w.down.Instance.Keys.KeySet().VerifyAccessToken(tok.AccessToken, w.down.Clock.Now(), w.down.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	if claims.IdP != store.IssuerGitHub {
		t.Errorf("idp = %q, want %q", claims.IdP, store.IssuerGitHub)
	}
	for _, s := range []string{gh.secret, tok.AccessToken} {
		if strings.Contains(w.down.Logs.String(), s) {
			t.Errorf("down's log holds a secret (%.10s…)", s)
		}
	}
	u, err := w.down.Store.UserByID(t.Context(), claims.Subject)
	if err != nil || claims.PublicSubject() != u.Subject {
		t.Fatalf("local user %+v, %v; token sub %q", u, err, claims.PublicSubject())
	}
	return u, b
}

func TestUpstreamGitHub_SubjectAndVerifiedPrimaryEmail(t *testing.T) {
	w, gh := newGitHubWorld(t)
	tests := []struct {
		name      string
		emails    []map[string]any
		wantEmail string
	}{
		{"verified primary", []map[string]any{
			{"email": "old@example.com", "primary": false, "verified": true},
			{"email": "Octo@Example.com", "primary": true, "verified": true}}, "octo@example.com"},
		{"unverified primary is ignored", []map[string]any{
			{"email": "other@example.com", "primary": false, "verified": true},
			{"email": "unverified@example.com", "primary": true, "verified": false}}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gh.mu.Lock()
			gh.user = ghUser{ID: int64(583231 + i), Login: "octocat", Emails: tt.emails}
			gh.mu.Unlock()
			u, b := w.gitHubRound(t, gh, "gh-"+tt.name[:4])
			if u.Issuer != store.IssuerGitHub || u.Subject != gh.user.idString() || u.Email != tt.wantEmail {
				t.Errorf("user = issuer %q subject %q email %q; want github, %s, %q", u.Issuer, u.Subject, u.Email, gh.user.idString(), tt.wantEmail)
			}
			// /account works for the identity; without an email, deletion cannot be
			// confirmed by a code and says so.
			if resp, body := w.down.Get(t, b, "/account"); resp.StatusCode != http.StatusOK || !strings.Contains(body, u.DisplayName()) {
				t.Errorf("/account = %d, want the identity's page naming %q", resp.StatusCode, u.DisplayName())
			}
			if tt.wantEmail == "" {
				if resp, _ := w.down.PostForm(t, b, "/account/delete", url.Values{}); resp.StatusCode != http.StatusConflict {
					t.Errorf("POST /account/delete without an email = %d, want 409", resp.StatusCode)
				}
			}
		})
	}
}

func (u ghUser) idString() string { return strconv.FormatInt(u.ID, 10) }

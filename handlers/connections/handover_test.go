package connections_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// recorder is the developer's API behind the gateway: it keeps the connection headers
// of each call.
type recorder struct {
	mu   sync.Mutex
	seen []http.Header
	srv  *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.Header.Clone())
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) last() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[len(r.seen)-1]
}

func (w *world) setUpstream(t *testing.T, app handlertest.AppFixture, upstream string) {
	t.Helper()
	s := app.App.Settings()
	s.UpstreamURL = upstream
	if _, err := w.env.Store.UpdateAppSettings(context.Background(), app.Owner.ID, app.App.ID, s, w.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
}

func gatewayCall(t *testing.T, base, slug, token string, hdr ...string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/gw/"+slug+"/repos", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestGateway_ConnectionHeaderOnlyForTheLinkedUser: the header carries the caller's
// own token at this app's provider, and nothing for another user, a service client,
// another app (even one declaring the same provider) or a header the caller made up.
func TestGateway_ConnectionHeaderOnlyForTheLinkedUser(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	cfg := testProviderConfig(tp, "acme", "read")
	cfg.Delivery = store.DeliveryHeader
	p := w.addProvider(t, w.app, cfg, tp.Secret)
	other := w.env.NewApp(t, handlertest.UniqueEmail(t, "otherdev"), store.ClientKindGPT, "https://chat.openai.com/aip/g-2/oauth/callback")
	w.addProvider(t, other, cfg, tp.Secret)
	up := newRecorder(t)
	w.setUpstream(t, w.app, up.srv.URL)
	w.setUpstream(t, other, up.srv.URL)

	linkedEmail := handlertest.UniqueEmail(t, "linked")
	lu := w.env.SignIn(t, linkedEmail)
	if resp, body := w.connectTest(t, lu, "acme", ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("connect = %d: %.300s", resp.StatusCode, body)
	}
	tok, err := w.svc.AccessToken(context.Background(), p, w.user(t, linkedEmail).ID)
	if err != nil {
		t.Fatal(err)
	}
	linkedTok := w.env.UserTokenFor(t, lu, w.app, "").Access
	otherAppTok := w.env.UserTokenFor(t, lu, other, "").Access
	strangerTok := w.env.UserToken(t, w.app, handlertest.UniqueEmail(t, "stranger"), "").Access
	sid, ssecret := w.serviceClient(t, w.app)
	serviceTok := w.env.ServiceToken(t, handlertest.AppFixture{App: w.app.App, Client: store.Client{ID: sid}, Secret: ssecret}, "").Access

	const h = "X-Authgpts-Connection-Acme"
	tests := []struct {
		name, slug, token string
		spoof             bool
		want              string
	}{
		{"the linked user", w.app.App.Slug, linkedTok, false, tok.Access},
		{"the linked user sending their own header", w.app.App.Slug, linkedTok, true, tok.Access},
		{"another user", w.app.App.Slug, strangerTok, false, ""},
		{"another user forging the header", w.app.App.Slug, strangerTok, true, ""},
		{"a service client", w.app.App.Slug, serviceTok, false, ""},
		{"the linked user at another app with the same provider", other.App.Slug, otherAppTok, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.spoof {
				hdr = []string{h, "forged-token"}
			}
			if st := gatewayCall(t, w.env.BaseURL, tt.slug, tt.token, hdr...); st != http.StatusOK {
				t.Fatalf("gateway = %d, want 200", st)
			}
			if got := up.last().Values(h); strings.Join(got, ",") != tt.want {
				t.Errorf("upstream got %s = %q, want %q", h, got, tt.want)
			}
		})
	}
}

// TestTokenExchange_Errors: only the app's service client, with a live user token of
// this app, for a provider this app declares and the user linked.
func TestTokenExchange_Errors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	tp := handlertest.NewOAuthProvider(t, "generic")
	w.addProvider(t, w.app, testProviderConfig(tp, "acme", "read"), tp.Secret)
	other := w.env.NewApp(t, handlertest.UniqueEmail(t, "otherdev"), store.ClientKindGPT, "https://chat.openai.com/aip/g-2/oauth/callback")
	w.addProvider(t, other, testProviderConfig(tp, "beta", "read"), tp.Secret)

	email := handlertest.UniqueEmail(t, "user")
	u := w.env.SignIn(t, email)
	if resp, _ := w.connectTest(t, u, "acme", ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("connect failed")
	}
	userTok := w.env.UserTokenFor(t, u, w.app, "").Access
	otherUserTok := w.env.UserTokenFor(t, u, other, "").Access
	unlinkedTok := w.env.UserToken(t, w.app, handlertest.UniqueEmail(t, "unlinked"), "").Access
	sid, ssecret := w.serviceClient(t, w.app)
	osid, osecret := w.serviceClient(t, other)
	serviceTok := w.env.ServiceToken(t, handlertest.AppFixture{App: w.app.App, Client: store.Client{ID: sid}, Secret: ssecret}, "").Access

	tests := []struct {
		name           string
		client, secret string
		subject, prov  string
		edit           func(f map[string][]string)
		wantStatus     int
		wantError      string
	}{
		{"success", sid, ssecret, userTok, "acme", nil, http.StatusOK, ""},
		{"unknown provider", sid, ssecret, userTok, "nope", nil, http.StatusBadRequest, "invalid_target"},
		{"another app's provider", sid, ssecret, userTok, "beta", nil, http.StatusBadRequest, "invalid_target"},
		{"another app's service client with this app's token", osid, osecret, userTok, "acme", nil, http.StatusBadRequest, "invalid_grant"},
		{"another app's service client asking for this app's provider", osid, osecret, otherUserTok, "acme", nil, http.StatusBadRequest, "invalid_target"},
		{"the user's GPT client", w.app.Client.ID, w.app.Secret, userTok, "acme", nil, http.StatusBadRequest, "unauthorized_client"},
		{"wrong client secret", sid, "wrong", userTok, "acme", nil, http.StatusUnauthorized, "invalid_client"},
		{"garbage subject token", sid, ssecret, "not-a-token", "acme", nil, http.StatusBadRequest, "invalid_grant"},
		{"a service token as subject", sid, ssecret, serviceTok, "acme", nil, http.StatusBadRequest, "invalid_grant"},
		{"a user without a linked account", sid, ssecret, unlinkedTok, "acme", nil, http.StatusBadRequest, "invalid_grant"},
		{"wrong subject token type", sid, ssecret, userTok, "acme", func(f map[string][]string) {
			f["subject_token_type"] = []string{"urn:ietf:params:oauth:token-type:id_token"}
		}, http.StatusBadRequest, "invalid_request"},
		{"requested type of another namespace", sid, ssecret, userTok, "acme", func(f map[string][]string) {
			f["requested_token_type"] = []string{"urn:ietf:params:oauth:token-type:access_token"}
		}, http.StatusBadRequest, "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := exchangeForm(tt.subject, tt.prov)
			if tt.edit != nil {
				tt.edit(form)
			}
			status, body := exchange(t, w.env.BaseURL, tt.client, tt.secret, form)
			if status != tt.wantStatus || (tt.wantError != "" && !strings.Contains(body, `"error":"`+tt.wantError+`"`)) {
				t.Errorf("exchange = %d %s, want %d %s", status, body, tt.wantStatus, tt.wantError)
			}
		})
	}
}

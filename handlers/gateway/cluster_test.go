package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// cluster is three instances on one PostgreSQL database behind a round-robin proxy, as
// a load balancer runs them. The proxy's URL is every instance's AUTHGPTS_BASE_URL, and
// e.BaseURL is the proxy, so every helper of env goes through it.
type cluster struct {
	*env
	instances []*handlers.Server
	direct    []string       // each instance's own URL, to ask one of them
	hits      []atomic.Int64 // requests the proxy sent to each instance
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	proxy := httptest.NewUnstartedServer(nil)
	proxyURL, _ := url.Parse("http://" + proxy.Listener.Addr().String())
	e := &env{Admin: handlertest.UniqueEmail(t, "admin")}
	e.Env = handlertest.New(t, func(c *handlers.Config) {
		c.BaseURL = proxyURL
		c.AdminEmails = []string{e.Admin}
	})
	e.GW = e.Gateway
	cl := &cluster{env: e, instances: []*handlers.Server{e.Instance}, direct: []string{e.Server.URL}, hits: make([]atomic.Int64, 3)}
	for range 2 {
		srv, hs := handlertest.StartInstance(t, e.Config)
		cl.instances = append(cl.instances, srv)
		cl.direct = append(cl.direct, hs.URL)
	}
	backends := make([]*httputil.ReverseProxy, len(cl.direct))
	for i, u := range cl.direct {
		target, _ := url.Parse(u)
		backends[i] = httputil.NewSingleHostReverseProxy(target)
		backends[i].Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	}
	var next atomic.Uint64
	proxy.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(next.Add(1) % uint64(len(backends)))
		cl.hits[i].Add(1)
		backends[i].ServeHTTP(w, r)
	})
	proxy.Start()
	t.Cleanup(proxy.Close)
	e.Env.BaseURL = proxy.URL
	return cl
}

// burst makes n concurrent gateway calls through the proxy and counts the statuses.
func (cl *cluster) burst(t *testing.T, n int, path, token string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, _ := do(t, cl.BaseURL, "GET", path, token, nil)
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes
}

// TestCluster_ThreeInstancesBehindALoadBalancer checks through a round-robin proxy that
// three instances on one database behave as one server: the rate limit and credits are
// exact across them, a revocation, a key rotation and client and app edits reach every
// instance within a second, and the usage recorded equals the calls answered.
func TestCluster_ThreeInstancesBehindALoadBalancer(t *testing.T) {
	t.Parallel()
	cl := newCluster(t)
	ctx := context.Background()

	t.Run("rate limit holds across instances", func(t *testing.T) {
		f := cl.newApp(t, store.ClientKindGPT, "rate_limit_per_minute = 12")
		tok, _, _ := cl.userToken(t, f, "openid")
		codes := cl.burst(t, 36, "/gw/"+f.App.Slug+"/x", tok)
		if codes[200] != 12 || codes[429] != 24 {
			t.Errorf("36 calls at 12 a minute over three instances: %v, want 200×12 and 429×24", codes)
		}
	})

	t.Run("credits are exact across instances", func(t *testing.T) {
		f := cl.newApp(t, store.ClientKindGPT, "metering_enabled = true, credits_per_call = 2, free_credits = 100, rate_limit_per_minute = 0")
		tok, user, _ := cl.userToken(t, f, "openid")
		codes := cl.burst(t, 120, "/gw/"+f.App.Slug+"/x", tok)
		for _, srv := range cl.instances {
			if err := srv.Gateway.Close(ctx); err != nil { // returns every leased credit
				t.Fatal(err)
			}
		}
		b, err := cl.Store.CreditBalance(ctx, f.App.ID, user.ID)
		if err != nil {
			t.Fatal(err)
		}
		if codes[200] != 50 || codes[402] != 70 || b.Balance != 0 || b.Spent != 100 || f.Upstream.count() != 50 {
			t.Errorf("codes %v, balance %d, spent %d, upstream saw %d; want 200×50, 402×70, 0, 100, 50",
				codes, b.Balance, b.Spent, f.Upstream.count())
		}
	})
	// Closing the gateways above ended their workers, not their routes: what follows
	// still answers, but records usage only through Flush. Start fresh gateways instead.
	cl = newCluster(t)

	t.Run("revocation reaches every instance within a second", func(t *testing.T) {
		f := cl.newApp(t, store.ClientKindGPT)
		toks, _ := cl.userTokens(t, f, "openid")
		for _, base := range cl.direct {
			for range 2 { // twice, so every instance has the token cached
				if resp, body := do(t, base, "GET", "/gw/"+f.App.Slug+"/x", toks.Access, nil); resp.StatusCode != 200 {
					t.Fatalf("%s before revocation: %d %s", base, resp.StatusCode, body)
				}
			}
		}
		resp, body := cl.PostForm(t, cl.userSession(t, toks.Claims.GrantID), "/account/grants/"+toks.Claims.GrantID+"/revoke", nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke on /account = %d %.200s", resp.StatusCode, body)
		}
		for _, base := range cl.direct {
			waitStatus(t, base, "/gw/"+f.App.Slug+"/x", toks.Access, http.StatusUnauthorized)
		}
	})

	t.Run("a key rotated on one instance signs and verifies on all", func(t *testing.T) {
		newKid, err := cl.instances[1].Keys.Rotate(ctx, oauth.AlgES256)
		if err != nil {
			t.Fatal(err)
		}
		for i, srv := range cl.instances {
			waitFor(t, func() bool { return srv.Keys.KeySet().HasKey(newKid) }, "instance %d to load the rotated key", i)
		}
		f := cl.newApp(t, store.ClientKindGPT)
		tok, _, _ := cl.userToken(t, f, "openid")
		if kid := oauth.TokenKeyID(tok); kid != newKid {
			t.Fatalf("a token issued after the rotation names key %q, want %q", kid, newKid)
		}
		for _, base := range cl.direct {
			if resp, body := do(t, base, "GET", "/gw/"+f.App.Slug+"/x", tok, nil); resp.StatusCode != 200 {
				t.Errorf("%s refused a token signed with the new key: %d %s", base, resp.StatusCode, body)
			}
		}
	})

	t.Run("client and app edits reach every instance's caches", func(t *testing.T) {
		f := cl.newApp(t, store.ClientKindService)
		tok := cl.serviceToken(t, f, "")
		for _, base := range cl.direct {
			if resp, body := do(t, base, "GET", "/gw/"+f.App.Slug+"/x", tok, nil); resp.StatusCode != 200 {
				t.Fatalf("%s before the edits: %d %s", base, resp.StatusCode, body)
			}
			if r := tokenWithSecret(t, base, f.Client.ID, f.Secret); r != http.StatusOK {
				t.Fatalf("%s: client_credentials before rotation = %d", base, r)
			}
		}
		// The developer rotates the secret with no overlap: the old one stops at once.
		secret := oauth.NewToken(oauth.PrefixClientSecret)
		if err := cl.Store.RotateClientSecret(ctx, f.Client.ID, cl.Hasher().Hash(secret), oauth.SecretHint(secret), 0, cl.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		for _, base := range cl.direct {
			waitFor(t, func() bool { return tokenWithSecret(t, base, f.Client.ID, f.Secret) == http.StatusUnauthorized },
				"%s to refuse the rotated-out secret", base)
			if r := tokenWithSecret(t, base, f.Client.ID, secret); r != http.StatusOK {
				t.Errorf("%s: the new secret = %d, want 200", base, r)
			}
		}
		// The developer points the app at another upstream, where nothing listens.
		gone := newUpstream(t)
		gone.Close()
		settings := f.App.Settings()
		settings.UpstreamURL = gone.URL
		if _, err := cl.Store.UpdateAppSettings(ctx, f.Owner.ID, f.App.ID, settings, cl.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		for _, base := range cl.direct {
			waitStatus(t, base, "/gw/"+f.App.Slug+"/x", tok, http.StatusBadGateway)
		}
	})

	t.Run("usage recorded equals the calls answered", func(t *testing.T) {
		f := cl.newApp(t, store.ClientKindGPT, "rate_limit_per_minute = 0")
		tok, _, _ := cl.userToken(t, f, "openid")
		codes := cl.burst(t, 90, "/gw/"+f.App.Slug+"/x", tok)
		for _, srv := range cl.instances {
			if err := srv.Gateway.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		ev, err := cl.Store.UsageEventsByApp(ctx, f.App.ID)
		if err != nil {
			t.Fatal(err)
		}
		if codes[200] != 90 || len(ev) != 90 {
			t.Errorf("codes %v, %d usage events; want 90 answered and 90 recorded", codes, len(ev))
		}
	})

	for i := range cl.hits {
		if n := cl.hits[i].Load(); n == 0 {
			t.Errorf("the proxy sent nothing to instance %d: the test proved nothing about it", i)
		}
	}
}

// tokenWithSecret asks base's token endpoint for a client_credentials token and returns
// the status.
func tokenWithSecret(t *testing.T, base, clientID, secret string) int {
	t.Helper()
	resp, err := http.PostForm(base+oauth.PathToken, url.Values{"grant_type": {"client_credentials"},
		"client_id": {clientID}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond for up to a second (cross-instance signals travel by NOTIFY).
func waitFor(t *testing.T, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a second for "+what, args...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

package connections_test

import (
	"context"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// benchWorld links one user at a header-delivered and exchange-delivered provider.
func benchWorld(b *testing.B) (*world, store.ConnectionProvider, string, url.Values, string, string) {
	w := &world{}
	env := handlertest.New(b)
	w.env = env
	w.app = env.NewApp(b, handlertest.UniqueEmail(b, "dev"), store.ClientKindGPT, "https://chat.openai.com/aip/g-1/oauth/callback")
	w.svc = env.Instance.Connections
	tp := handlertest.NewOAuthProvider(b, "generic")
	ctx := context.Background()
	p := store.ConnectionProvider{ID: store.NewRowID(), AppID: w.app.App.ID, Provider: "acme", Preset: "generic", DisplayName: "Acme",
		AuthorizeURL: tp.URL("/authorize"), TokenURL: tp.URL("/token"), RevokeURL: tp.URL("/revoke"), ClientID: tp.ClientID,
		Scopes: []string{"read"}, AuthStyle: store.AuthStyleBody, PKCE: true, Delivery: store.DeliveryHeader, CreatedAt: env.Clock.Now()}
	var err error
	if p.KeyID, p.ClientSecretSealed, err = w.svc.SealSecret(ctx, env.Store, p.ID, tp.Secret); err != nil {
		b.Fatal(err)
	}
	if err := env.Store.CreateConnectionProvider(ctx, w.app.Owner.ID, p); err != nil {
		b.Fatal(err)
	}
	email := handlertest.UniqueEmail(b, "user")
	c := env.SignIn(b, email)
	resp, err := c.Get(env.BaseURL + "/connections/acme/start?app=" + w.app.App.Slug)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	resp, err = env.Client().Get(resp.Header.Get("Location"))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp, err = c.Get(resp.Header.Get("Location")); err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("callback: %v", err)
	}
	resp.Body.Close()
	user, _ := env.Store.UserByEmail(ctx, email)
	userTok := env.UserTokenFor(b, c, w.app, "").Access
	secret := "bench-" + handlertest.UniqueEmail(b, "s")
	sc, err := env.Store.CreateClient(ctx, store.NewClient{ID: "agpt_bench" + user.ID[:8], AppID: w.app.App.ID, Name: "API",
		Kind: store.ClientKindService, SecretHash: env.Hasher().Hash(secret)}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return w, p, user.ID, exchangeForm(userTok, "acme"), sc.ID, secret
}

// BenchmarkHandOver_GatewayHeader: the gateway's lookup of a linked user's header
// (providers and token cached in memory, nothing decrypted per call).
func BenchmarkHandOver_GatewayHeader(b *testing.B) {
	w, _, userID, _, _, _ := benchWorld(b)
	ctx := context.Background()
	if h, err := w.svc.HeaderValues(ctx, w.app.App.ID, userID); err != nil || len(h) != 1 {
		b.Fatalf("HeaderValues = %v, %v", h, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := w.svc.HeaderValues(ctx, w.app.App.ID, userID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandOver_TokenExchange: RFC 8693 exchanges over HTTP from 8 concurrent
// callers (the developer's API), reporting requests per second.
func BenchmarkHandOver_TokenExchange(b *testing.B) {
	w, _, _, form, id, secret := benchWorld(b)
	body := form.Encode()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	do := func() error {
		req, _ := http.NewRequest(http.MethodPost, w.env.BaseURL+"/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("exchange = %d", resp.StatusCode)
		}
		return nil
	}
	if err := do(); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism((8 + runtimeProcs() - 1) / runtimeProcs())
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := do(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

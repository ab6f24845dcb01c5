package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/webhook"
)

// TestGateway_CreditWebhooksFireOncePerCrossing: calls through the gateway, leased in
// memory far from zero and spent one by one near it, cross the app's credits.low
// threshold once and exhaust the balance once: one credits.low and one credits.exhausted
// webhook, delivered to a real receiver, however many calls ran at once.
func TestGateway_CreditWebhooksFireOncePerCrossing(t *testing.T) {
	t.Parallel()
	rc := handlertest.NewWebhookReceiver(t)
	e := &env{Admin: handlertest.UniqueEmail(t, "admin")}
	e.Env = handlertest.NewWithGateway(t, nil, rc.Option())
	e.GW = e.Gateway
	const free, threshold, calls = 600, 400, 640 // leases cross 400; 40 calls get 402
	f := e.newApp(t, store.ClientKindGPT, "metering_enabled = true, credits_per_call = 1, free_credits = 600, rate_limit_per_minute = 0")
	ctx := context.Background()
	if err := e.Store.SetCreditsLowThreshold(ctx, f.App.ID, threshold); err != nil {
		t.Fatal(err)
	}
	id := store.NewUUID()
	secret := webhook.NewSecret()
	sealed, err := webhook.Seal(e.Instance.Derived.WebhookSecrets, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.CreateWebhookEndpoint(ctx, f.App.ID, store.NewWebhookEndpoint{ID: id, URL: rc.URL,
		Events: []string{store.EventCreditsLow, store.EventCreditsExhausted}, SecretSealed: sealed, SecretHint: webhook.SecretHint(secret)}, time.Now()); err != nil {
		t.Fatal(err)
	}
	tok, user, _ := e.userToken(t, f, "openid")

	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	work := make(chan struct{}, calls)
	for range calls {
		work <- struct{}{}
	}
	close(work)
	for range 8 {
		wg.Go(func() {
			for range work {
				resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil)
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if codes[http.StatusOK] != free || codes[http.StatusPaymentRequired] != calls-free {
		t.Fatalf("codes = %v, want %d×200 and %d×402", codes, free, calls-free)
	}
	got := map[string]int{}
	for range 2 {
		r := rc.Wait(t)
		var p struct {
			Type string
			Data struct {
				Balance int64
				User    struct{ ID string }
			}
		}
		if err := json.Unmarshal(r.Body, &p); err != nil || p.Data.User.ID != user.ID {
			t.Fatalf("webhook body %s: %v", r.Body, err)
		}
		got[p.Type]++
	}
	events := map[string]int{}
	rows, err := e.Store.DB().Query(`SELECT type, count(*) FROM webhook_events WHERE app_id = $1 GROUP BY type`, f.App.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			t.Fatal(err)
		}
		events[typ] = n
	}
	if events[store.EventCreditsLow] != 1 || events[store.EventCreditsExhausted] != 1 || len(events) != 2 {
		t.Errorf("events = %v, want one credits.low and one credits.exhausted", events)
	}
	if got[store.EventCreditsLow] != 1 || got[store.EventCreditsExhausted] != 1 {
		t.Errorf("delivered = %v, want one of each", got)
	}
}

package usage_test

import (
	"context"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// Credits and upstream-reported cost show per route, and the key filter narrows the
// numbers to one API key's calls.
func TestUsage_CreditsByRouteUpstreamCostAndKeyFilter(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	devEmail := handlertest.UniqueEmail(t, "dev")
	fx := env.NewApp(t, devEmail, store.ClientKindGPT)
	ctx := context.Background()
	key := oauth.NewToken(oauth.PrefixAPIKey)
	keyID, err := env.Store.CreateDeveloperKey(ctx, fx.Owner.ID, store.NewAPIKey{AppID: fx.App.ID, Name: "Importer",
		Hash: env.Hasher().Hash(key), Hint: oauth.SecretHint(key)}, env.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	user, _ := env.Store.EnsureUser(ctx, handlertest.UniqueEmail(t, "user"))
	now := env.Clock.Now()
	ev := func(route string, credits, cost int64, reported bool, keyID string, status int) store.UsageEvent {
		e := store.UsageEvent{At: now, AppID: fx.App.ID, Method: "POST", Route: route, Status: status, LatencyMicros: 900,
			Credits: credits, UpstreamCostMicros: cost, UpstreamCostReported: reported, APIKeyID: keyID}
		if keyID == "" {
			e.ClientID, e.UserID = fx.Client.ID, user.ID
		}
		return e
	}
	recordCalls(t, env, []store.UsageEvent{
		ev("/v1/chat", 30, 12_500, true, "", 200),
		ev("/v1/chat", 20, 7_500, true, keyID, 200),
		ev("/v1/search", 5, 0, false, keyID, 500),
	})

	c := env.SignIn(t, devEmail)
	_, body := env.Get(t, c, "/dashboard/apps/"+fx.App.Slug+"/usage")
	st := stats(body)
	if st["Credits spent"] != "55" || st["Upstream cost"] != "$0.02" || st["Calls"] != "3" {
		t.Errorf("stats = %v", st)
	}
	if !strings.Contains(body, `id="chart-upstream-cost"`) || !strings.Contains(body, `data-testid="key-filter"`) || !strings.Contains(body, "Importer (agk_") {
		t.Error("the page lacks the upstream cost chart or the key filter")
	}
	// Top routes carry credits and upstream cost.
	if !strings.Contains(body, `<td class="px-4 py-2 text-right tabular-nums" data-testid="route-credits">50</td>`) ||
		!strings.Contains(body, `data-testid="route-upstream-cost">$0.02</td>`) {
		t.Errorf("top routes lack credits or cost; body: %s", body[strings.Index(body, `data-testid="top-routes"`):][:1500])
	}

	_, body = env.Get(t, c, "/dashboard/apps/"+fx.App.Slug+"/usage?key="+keyID)
	st = stats(body)
	if st["Calls"] != "2" || st["Credits spent"] != "25" || st["Upstream cost"] != "$0.0075" || st["Errors"] != "1" {
		t.Errorf("key-filtered stats = %v", st)
	}
	// An unknown key filter means all calls, never another app's key.
	_, body = env.Get(t, c, "/dashboard/apps/"+fx.App.Slug+"/usage?key=00000000-0000-0000-0000-000000000001")
	if st = stats(body); st["Calls"] != "3" {
		t.Errorf("unknown key filter: %v", st)
	}
	// The key's last use moved with the batch.
	keys, _ := env.Store.DeveloperKeysByApp(ctx, fx.App.ID)
	if len(keys) != 1 || keys[0].LastUsedAt == nil {
		t.Errorf("last_used_at not set: %+v", keys)
	}
}

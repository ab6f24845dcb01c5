package usage_test

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// recordCalls stores gateway usage events the way the gateway's buffer does and rolls
// them up, so the page reads exactly what the gateway recorded.
func recordCalls(t *testing.T, env *handlertest.Env, events []store.UsageEvent) {
	t.Helper()
	ctx := context.Background()
	if err := env.Store.InsertUsageEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.RollUpUsage(ctx, 10_000); err != nil {
		t.Fatal(err)
	}
}

var statRe = regexp.MustCompile(`(?s)<p class="text-xs font-medium uppercase tracking-wide text-slate-500">([^<]+)</p><p class="mt-1 text-2xl font-semibold tabular-nums"[^>]*>([^<]+)</p>`)

func stats(body string) map[string]string {
	out := map[string]string{}
	for _, m := range statRe.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestUsage_PageShowsWhatTheGatewayRecorded(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	devEmail := handlertest.UniqueEmail(t, "dev")
	fx := env.NewApp(t, devEmail, store.ClientKindGPT)
	ctx := context.Background()
	alice, _ := env.Store.EnsureUser(ctx, handlertest.UniqueEmail(t, "alice"))
	bob, _ := env.Store.EnsureUser(ctx, handlertest.UniqueEmail(t, "bob"))
	now := env.Clock.Now()
	var events []store.UsageEvent
	add := func(n int, user store.User, status int, credits int64, ago time.Duration) {
		for range n {
			events = append(events, store.UsageEvent{At: now.Add(-ago), AppID: fx.App.ID, ClientID: fx.Client.ID, UserID: user.ID,
				Method: "GET", Route: "/weather", Status: status, LatencyMicros: 1500, Credits: credits})
		}
	}
	add(7, alice, 200, 2, time.Hour)
	add(2, bob, 200, 2, 2*time.Hour)
	add(1, bob, 502, 0, 3*time.Hour)
	add(3, alice, 200, 2, 3*24*time.Hour) // outside 24 h, inside 7 d
	recordCalls(t, env, events)

	c := env.SignIn(t, devEmail)
	resp, body := env.Get(t, c, "/dashboard/apps/"+fx.App.Slug+"/usage")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET usage = %d", resp.StatusCode)
	}
	got := stats(body)
	want := map[string]string{"Calls": "10", "Users": "2", "Errors": "1", "Credits spent": "18"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("24 h %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if !strings.Contains(body, alice.Email) || !strings.Contains(body, bob.Email) {
		t.Error("top users lack alice and bob")
	}
	routes, err := env.Store.TopRoutes(ctx, store.UsageQuery{AppID: fx.App.ID, From: now.Add(-24 * time.Hour), To: now.Add(time.Hour)}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err != nil || len(routes) != 1 || routes[0].Route != "/weather" || routes[0].Calls != 10 || routes[0].Errors != 1 {
		t.Errorf("top routes = %+v (%v), want /weather with 10 calls and 1 error", routes, err)
	}
	if !strings.Contains(body, `data-testid="top-routes"`) || !strings.Contains(body, "/weather") {
		t.Error("the page does not show the top route")
	}
	_, body = env.Get(t, c, "/dashboard/apps/"+fx.App.Slug+"/usage?range=7d")
	if got := stats(body); got["Calls"] != "13" || got["Credits spent"] != "24" {
		t.Errorf("7 d stats = %v, want 13 calls and 24 credits", got)
	}
	for _, r := range []string{"24h", "7d", "30d"} {
		_, body = env.Get(t, c, "/dashboard/apps/"+fx.App.Slug+"/usage?range="+r)
		for _, chart := range []string{"chart-calls", "chart-users", "chart-credits", "chart-latency"} {
			if !strings.Contains(body, `data-testid="`+chart+`"`) {
				t.Errorf("range %s lacks %s", r, chart)
			}
		}
	}
}

func TestUsage_HTMXGetsOnlyThePanelAndClientFilterNarrows(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	devEmail := handlertest.UniqueEmail(t, "dev")
	fx := env.NewApp(t, devEmail, store.ClientKindGPT)
	u, _ := env.Store.EnsureUser(context.Background(), handlertest.UniqueEmail(t, "u"))
	recordCalls(t, env, []store.UsageEvent{
		{At: env.Clock.Now(), AppID: fx.App.ID, ClientID: fx.Client.ID, UserID: u.ID, Method: "GET", Route: "/a", Status: 200, LatencyMicros: 900},
		{At: env.Clock.Now(), AppID: fx.App.ID, ClientID: "other-client", UserID: u.ID, Method: "GET", Route: "/a", Status: 200, LatencyMicros: 900},
	})
	c := env.SignIn(t, devEmail)
	req, _ := http.NewRequest("GET", env.BaseURL+"/dashboard/apps/"+fx.App.Slug+"/usage?range=7d&client="+fx.Client.ID, nil)
	req.Header.Set("HX-Request", "true")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	if strings.Contains(body, "<html") || !strings.HasPrefix(strings.TrimSpace(body), `<section id="usage-panel"`) {
		t.Fatalf("htmx answer is not just the panel: %.120s", body)
	}
	if resp.Header.Get("Vary") != "HX-Request" {
		t.Error("no Vary: HX-Request on a URL that answers pages and partials")
	}
	if got := stats(body); got["Calls"] != "1" {
		t.Errorf("calls for one client = %q, want 1", got["Calls"])
	}
}

func TestUsage_CSVExportMatchesTheRollUps(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	devEmail := handlertest.UniqueEmail(t, "dev")
	fx := env.NewApp(t, devEmail, store.ClientKindGPT)
	u, _ := env.Store.EnsureUser(context.Background(), handlertest.UniqueEmail(t, "u"))
	var events []store.UsageEvent
	for range 4 {
		events = append(events, store.UsageEvent{At: env.Clock.Now(), AppID: fx.App.ID, ClientID: fx.Client.ID, UserID: u.ID, Method: "POST", Route: "/x", Status: 201, LatencyMicros: 3000, Credits: 5})
	}
	recordCalls(t, env, events)
	resp, body := env.Get(t, env.SignIn(t, devEmail), "/dashboard/apps/"+fx.App.Slug+"/usage/export.csv?range=24h")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("CSV rows = %v (%v), want a header and one hour", rows, err)
	}
	if rows[1][1] != "4" || rows[1][2] != "4" || rows[1][6] != "1" || rows[1][7] != "20" {
		t.Errorf("CSV row = %v, want 4 calls, 4 2xx, 1 user, 20 credits", rows[1])
	}
}

func TestUsage_OtherDevelopersGet404(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	fx := env.NewApp(t, handlertest.UniqueEmail(t, "owner"), store.ClientKindGPT)
	intruder := env.SignIn(t, handlertest.UniqueEmail(t, "intruder"))
	base := "/dashboard/apps/" + fx.App.Slug
	for _, r := range []struct{ method, path string }{
		{"GET", base + "/usage"}, {"GET", base + "/usage/export.csv"}, {"GET", base + "/credits?email=a@example.com"},
		{"POST", base + "/credits"}, {"POST", base + "/credits/reset"},
	} {
		req, _ := http.NewRequest(r.method, env.BaseURL+r.path, strings.NewReader("email=a%40example.com&mode=set&amount=5&reason=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := intruder.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s by another developer = %d, want 404", r.method, r.path, resp.StatusCode)
		}
	}
	var n int
	_ = env.Store.DB().Get(&n, `SELECT count(*) FROM credit_balances`)
	if n != 0 {
		t.Error("another developer's request changed a balance")
	}
}

func TestCredits_TopUpSetAndResetAreAudited(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	devEmail := handlertest.UniqueEmail(t, "dev")
	fx := env.NewApp(t, devEmail, store.ClientKindGPT)
	userEmail := handlertest.UniqueEmail(t, "user")
	user, _ := env.Store.EnsureUser(context.Background(), userEmail)
	c := env.SignIn(t, devEmail)
	base := "/dashboard/apps/" + fx.App.Slug + "/credits"

	_, body := env.Get(t, c, base+"?email="+url.QueryEscape(userEmail))
	if !strings.Contains(body, `data-testid="credit-account"`) {
		t.Fatal("search did not find the user")
	}
	steps := []struct {
		mode, amount string
		want         int64
	}{{"add", "100", 100}, {"add", "50", 150}, {"set", "7", 7}}
	for _, s := range steps {
		resp, _ := env.PostForm(t, c, base, url.Values{"email": {userEmail}, "mode": {s.mode}, "amount": {s.amount}, "reason": {"support"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s = %d", s.mode, s.amount, resp.StatusCode)
		}
		b, err := env.Store.CreditBalance(context.Background(), fx.App.ID, user.ID)
		if err != nil || b.Balance != s.want {
			t.Fatalf("after %s %s balance = %d (%v), want %d", s.mode, s.amount, b.Balance, err, s.want)
		}
	}
	resp, _ := env.PostForm(t, c, base+"/reset", url.Values{"amount": {"1000"}, "reason": {"monthly"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset = %d", resp.StatusCode)
	}
	b, _ := env.Store.CreditBalance(context.Background(), fx.App.ID, user.ID)
	if b.Balance != 1000 {
		t.Errorf("after reset balance = %d, want 1000", b.Balance)
	}
	var actions []string
	_ = env.Store.DB().Select(&actions, `SELECT action FROM audit_log WHERE action LIKE 'credits.%' ORDER BY id`)
	if strings.Join(actions, ",") != "credits.top_up,credits.top_up,credits.set,credits.reset_all" {
		t.Errorf("audit = %v", actions)
	}

	// Bad input: a clear 422 and nothing changes.
	for _, form := range []url.Values{
		{"email": {userEmail}, "mode": {"add"}, "amount": {"-5"}, "reason": {"x"}},
		{"email": {userEmail}, "mode": {"add"}, "amount": {"ten"}, "reason": {"x"}},
		{"email": {userEmail}, "mode": {"add"}, "amount": {"5"}, "reason": {""}},
		{"email": {userEmail}, "mode": {"steal"}, "amount": {"5"}, "reason": {"x"}},
		{"email": {"nobody@example.com"}, "mode": {"add"}, "amount": {"5"}, "reason": {"x"}},
	} {
		resp, _ := env.PostForm(t, c, base, form)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("bad form %v = %d, want 422", form, resp.StatusCode)
		}
	}
	b, _ = env.Store.CreditBalance(context.Background(), fx.App.ID, user.ID)
	if b.Balance != 1000 {
		t.Errorf("bad input changed the balance to %d", b.Balance)
	}
}

func TestUsage_ClientFilterIncludesConnectedMCPClients(t *testing.T) {
	t.Parallel()
	env := handlertest.New(t)
	devEmail := handlertest.UniqueEmail(t, "dev")
	fx := env.NewApp(t, devEmail, store.ClientKindGPT)
	ctx := context.Background()
	u, _ := env.Store.EnsureUser(ctx, handlertest.UniqueEmail(t, "u"))
	// A dynamically registered client belongs to no app; its grant binds it to this one.
	if _, err := env.Store.DB().Exec(`INSERT INTO clients (id, app_id, name, kind, origin) VALUES ('mcp-claude', NULL, 'claudeai', 'public', 'registration')`); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Store.DB().Exec(`INSERT INTO grants (user_id, client_id, app_id, scopes) VALUES ($1, 'mcp-claude', $2, '{openid}')`, u.ID, fx.App.ID); err != nil {
		t.Fatal(err)
	}
	var events []store.UsageEvent
	for _, client := range []string{"mcp-claude", "mcp-claude", fx.Client.ID} {
		events = append(events, store.UsageEvent{At: env.Clock.Now(), AppID: fx.App.ID, ClientID: client, UserID: u.ID, Method: "POST", Route: "/mcp", Status: 200, LatencyMicros: 900})
	}
	recordCalls(t, env, events)
	c := env.SignIn(t, devEmail)
	_, body := env.Get(t, c, "/dashboard/apps/"+fx.App.Slug+"/usage?client=mcp-claude")
	if !strings.Contains(body, `<option value="mcp-claude" selected>claudeai (MCP)</option>`) {
		t.Fatal("the client filter does not offer the connected MCP client")
	}
	if got := stats(body); got["Calls"] != "2" {
		t.Errorf("calls of the MCP client = %q, want 2", got["Calls"])
	}
	_, csvBody := env.Get(t, c, "/dashboard/apps/"+fx.App.Slug+"/usage/export.csv?range=24h&client=mcp-claude")
	rows, _ := csv.NewReader(strings.NewReader(csvBody)).ReadAll()
	if len(rows) != 2 || rows[1][1] != "2" {
		t.Errorf("CSV for the MCP client = %v, want one hour with 2 calls", rows)
	}
}

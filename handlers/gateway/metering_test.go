package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/portal"
	"github.com/authgpts/authgpts/store"
)

// meteredUpstream is a real HTTP server that reports what each call cost, the way an
// LLM API behind the gateway would:
//
//	/v1/cost?c=N[&u=M]       AuthGPTs-Credits: N (and AuthGPTs-Upstream-Cost: M) as headers
//	/v1/stream?c=N[&u=M]     an SSE stream of three events, then the same as trailers
//	/v1/raw?h=VALUE          AuthGPTs-Credits: VALUE verbatim (malformed values)
//	anything else            200 without a report
func meteredUpstream(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch r.URL.Path {
		case "/v1/cost":
			w.Header().Set("AuthGPTs-Credits", q.Get("c"))
			if u := q.Get("u"); u != "" {
				w.Header().Set("AuthGPTs-Upstream-Cost", u)
			}
			io.WriteString(w, `{"ok":true}`)
		case "/v1/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Trailer", "AuthGPTs-Credits, AuthGPTs-Upstream-Cost")
			w.WriteHeader(http.StatusOK)
			for i := range 3 {
				fmt.Fprintf(w, "data: token %d\n\n", i)
				w.(http.Flusher).Flush()
			}
			w.Header().Set("AuthGPTs-Credits", q.Get("c"))
			if u := q.Get("u"); u != "" {
				w.Header().Set("AuthGPTs-Upstream-Cost", u)
			}
		case "/v1/raw":
			w.Header()["Authgpts-Credits"] = q["h"]
			io.WriteString(w, `{"ok":true}`)
		default:
			io.WriteString(w, `{"ok":true}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// meteredApp is an app behind meteredUpstream with metering on.
func (e *env) meteredApp(t testing.TB, settings string) fixture {
	t.Helper()
	f := e.newApp(t, "gpt", settings)
	up := meteredUpstream(t)
	e.exec(t, `UPDATE apps SET upstream_url = $2 WHERE id = $1`, f.App.ID, up.URL+"/v1")
	return f
}

func (e *env) price(t testing.TB, f fixture, method, pattern string, credits int64) {
	t.Helper()
	if err := e.Store.AddRoutePrice(context.Background(), f.Owner.ID, f.App.ID, store.RoutePrice{Method: method, Pattern: pattern, Credits: credits}, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
}

func remaining(t testing.TB, resp *http.Response) int64 {
	t.Helper()
	v := resp.Header.Get("AuthGPTs-Credits-Remaining")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("AuthGPTs-Credits-Remaining = %q on a %d answer", v, resp.StatusCode)
	}
	return n
}

// TestMetering_PricesHoldsAndSettlement: the route price is held before forwarding and
// the call settles to the cost the upstream reports in a header or an SSE trailer; the
// reports never reach the caller; malformed reports are ignored with a warning; a cost
// above the balance takes it to zero and is recorded as overdraft.
func TestMetering_PricesHoldsAndSettlement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.meteredApp(t, "metering_enabled = true, credits_per_call = 1, free_credits = 100, rate_limit_per_minute = 0")
	e.price(t, f, "*", "/cost", 10)
	e.price(t, f, "*", "/stream", 10)
	e.price(t, f, "POST", "/raw", 6)
	if err := e.Store.SetPlan(context.Background(), f.Owner.ID, f.App.ID, store.Plan{TopUpURL: "https://example.com/buy"}, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	tok, user, _ := e.userToken(t, f, "openid")
	gw := "/gw/" + f.App.Slug
	balance := func() store.CreditBalance {
		b, err := e.Store.CreditBalance(context.Background(), f.App.ID, user.ID)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	steps := []struct {
		method, path string
		want         int64 // credits charged
		warn         bool
	}{
		{"GET", "/other", 1, false},                  // no rule: the default cost
		{"GET", "/cost?c=4&u=2500", 4, false},        // reported below the hold
		{"GET", "/cost?c=25&u=90000", 25, false},     // reported above the hold
		{"GET", "/stream?c=7&u=1200", 7, false},      // reported in the SSE trailer
		{"GET", "/cost?c=0", 0, false},               // free call
		{"POST", "/raw?h=-5", 6, true},               // negative: ignored, the held price stays
		{"POST", "/raw?h=3.5", 6, true},              // not an integer
		{"POST", "/raw?h=12abc", 6, true},            // garbage
		{"GET", "/raw?h=99999999999999999", 1, true}, // too large; GET /raw has no rule
	}
	spent := int64(0)
	for _, s := range steps {
		resp, body := e.call(t, s.method, gw+s.path, tok, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s = %d %s", s.method, s.path, resp.StatusCode, body)
		}
		if resp.Header.Get("AuthGPTs-Credits") != "" || resp.Header.Get("AuthGPTs-Upstream-Cost") != "" ||
			resp.Trailer.Get("AuthGPTs-Credits") != "" || resp.Trailer.Get("AuthGPTs-Upstream-Cost") != "" {
			t.Errorf("%s: the upstream's report reached the caller: %v %v", s.path, resp.Header, resp.Trailer)
		}
		if s.path == "/stream?c=7&u=1200" && !strings.Contains(string(body), "data: token 2") {
			t.Errorf("stream body %q", body)
		}
		spent += s.want
		// The header names what is left after this call's hold (settled calls before it).
		remaining(t, resp)
	}
	b := balance()
	if b.Balance+b.AllowanceLeft != 100-spent || b.Spent != spent {
		t.Fatalf("balance %+v after spending %d of 100", b, spent)
	}
	ev := e.events(t, f.App.ID)
	if len(ev) != len(steps) {
		t.Fatalf("%d events, want %d", len(ev), len(steps))
	}
	for i, s := range steps {
		if ev[i].Credits != s.want || (ev[i].Warning != "") != s.warn {
			t.Errorf("%s %s: event credits %d warning %q; want %d, warning %v", s.method, s.path, ev[i].Credits, ev[i].Warning, s.want, s.warn)
		}
	}
	if !ev[1].UpstreamCostReported || ev[1].UpstreamCostMicros != 2500 || !ev[3].UpstreamCostReported || ev[3].UpstreamCostMicros != 1200 || ev[0].UpstreamCostReported {
		t.Errorf("upstream costs: %+v", ev[:4])
	}
	// The next call's header reads the settled balance.
	resp, _ := e.call(t, "GET", gw+"/cost?c=0", tok, nil)
	if got := remaining(t, resp); got != 100-spent-10 { // its own 10 are held while it runs
		t.Errorf("AuthGPTs-Credits-Remaining = %d, want %d", got, 100-spent-10)
	}

	// Overdraft: 100-spent credits are left; a call reporting far more takes them all,
	// never more, and records the rest.
	left := balance().Balance
	resp, body := e.call(t, "GET", gw+"/cost?c="+strconv.FormatInt(left+40, 10), tok, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("overdraft call = %d %s", resp.StatusCode, body)
	}
	b = balance()
	if b.Balance != 0 || b.AllowanceLeft != 0 || b.Overdraft != 40 {
		t.Errorf("after the overdraft: %+v, want 0 left and 40 overdraft", b)
	}
	ev = e.events(t, f.App.ID)
	if last := ev[len(ev)-1]; last.Credits != left || last.Overdraft != 40 {
		t.Errorf("overdraft event: credits %d overdraft %d, want %d and 40", last.Credits, last.Overdraft, left)
	}
	// Empty: 402 naming the balance, the reset date and the top-up URL; nothing forwarded.
	resp, body = e.call(t, "GET", gw+"/cost?c=1", tok, nil)
	m := jsonBody(t, body)
	if resp.StatusCode != http.StatusPaymentRequired || m["balance"] != 0.0 || m["top_up_url"] != "https://example.com/buy" ||
		m["allowance_resets_at"] != nil || remaining(t, resp) != 0 { // no allowance: nothing is renewed
		t.Errorf("402 = %d %s", resp.StatusCode, body)
	}
}

// TestMetering_SettlementExactUnderConcurrencyOnTwoInstances: 500 concurrent calls over
// two instances, each reporting its own cost, with the balance running out part way.
// Every answered call is charged its reported cost, or the rest of the balance plus
// recorded overdraft; the balance ends at exactly what was not charged and never below 0.
// (A call may be refused while other calls hold more than they are charged in the end:
// a hold is what the route costs until the upstream says otherwise.)
func TestMetering_SettlementExactUnderConcurrencyOnTwoInstances(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const free, calls = 2000, 500
	f := e.meteredApp(t, "metering_enabled = true, credits_per_call = 2, free_credits = 2000, rate_limit_per_minute = 0")
	e.price(t, f, "*", "/cost", 5)
	tok, user, _ := e.userToken(t, f, "openid")
	second, gw2 := e.secondInstance(t, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	reported := map[int64]int{} // cost → answered calls
	for i := range calls {
		wg.Go(func() {
			base := e.BaseURL
			if i%2 == 1 {
				base = second
			}
			c := int64(i % 13) // 0..12: below, at and above the hold of 5
			resp, _ := do(t, base, "GET", "/gw/"+f.App.Slug+"/cost?c="+strconv.FormatInt(c, 10), tok, nil)
			mu.Lock()
			codes[resp.StatusCode]++
			if resp.StatusCode == 200 {
				reported[c]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	ctx := context.Background()
	if err := e.GW.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := gw2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if codes[200]+codes[402] != calls || codes[200] == 0 || codes[402] == 0 {
		t.Fatalf("codes %v: want some 200s and, once the balance is gone, 402s", codes)
	}
	var wantReported int64
	for c, n := range reported {
		wantReported += c * int64(n)
	}
	evs, err := e.Store.UsageEventsByApp(ctx, f.App.ID)
	if err != nil || len(evs) != calls {
		t.Fatalf("%d events (%v), want %d", len(evs), err, calls)
	}
	var charged, overdraft int64
	for _, ev := range evs {
		charged += ev.Credits
		overdraft += ev.Overdraft
		if ev.Status == 402 && (ev.Credits != 0 || ev.Overdraft != 0) {
			t.Errorf("a refused call was charged: %+v", ev)
		}
	}
	b, err := e.Store.CreditBalance(ctx, f.App.ID, user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Balance < 0 || b.Balance != free-charged || b.Spent != charged || charged+overdraft != wantReported || b.Overdraft != overdraft {
		t.Errorf("balance %d spent %d overdraft %d; events charged %d overdraft %d; reported %d (codes %v)",
			b.Balance, b.Spent, b.Overdraft, charged, overdraft, wantReported, codes)
	}
}

// TestMetering_MonthlyAllowanceResetsOnTheFirst: the allowance is spent first, then the
// granted credits; on the 1st (UTC) it is whole again, with no job run, on every
// instance, and allowance credits leased in the old month do not leak into the new one.
func TestMetering_MonthlyAllowanceResetsOnTheFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := e.Clock.Now()
	e.Clock.Advance(store.NextReset(now).Sub(now) - 30*time.Minute) // 23:30 UTC on the last day of a month
	f := e.meteredApp(t, "metering_enabled = true, credits_per_call = 3, free_credits = 5, rate_limit_per_minute = 0, access_token_ttl_seconds = 86400")
	if err := e.Store.SetPlan(context.Background(), f.Owner.ID, f.App.ID, store.Plan{MonthlyAllowance: 10, TopUpURL: "https://example.com/buy"}, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	tok, user, _ := e.userToken(t, f, "openid")
	gw := "/gw/" + f.App.Slug + "/x"
	second, _ := e.secondInstance(t, nil)
	want := []int64{12, 9, 6, 3, 0} // remaining after each call's hold: 10 allowance + 5 free
	for i, w := range want {
		base := e.BaseURL
		if i%2 == 1 {
			base = second
		}
		resp, body := do(t, base, "GET", gw, tok, nil)
		if resp.StatusCode != 200 || remaining(t, resp) != w {
			t.Fatalf("call %d = %d (remaining %s), want 200 and %d; %s", i, resp.StatusCode, resp.Header.Get("AuthGPTs-Credits-Remaining"), w, body)
		}
	}
	resp, body := e.call(t, "GET", gw, tok, nil)
	m := jsonBody(t, body)
	reset := store.NextReset(e.Clock.Now())
	if resp.StatusCode != 402 || m["allowance_resets_at"] != reset.Format(time.RFC3339) || m["balance"] != 0.0 {
		t.Fatalf("empty = %d %s", resp.StatusCode, body)
	}
	b, _ := e.Store.CreditBalance(context.Background(), f.App.ID, user.ID)
	if b.Balance != 0 || b.AllowanceLeft != 0 {
		t.Fatalf("end of month: %+v", b)
	}

	e.Clock.Advance(time.Hour) // 00:30 on the 1st
	for i, w := range []int64{7, 4} {
		base := e.BaseURL
		if i%2 == 1 {
			base = second
		}
		resp, body := do(t, base, "GET", gw, tok, nil)
		if resp.StatusCode != 200 || remaining(t, resp) != w {
			t.Fatalf("new month call %d = %d (remaining %s), want %d; %s", i, resp.StatusCode, resp.Header.Get("AuthGPTs-Credits-Remaining"), w, body)
		}
	}
	b, _ = e.Store.CreditBalance(context.Background(), f.App.ID, user.ID)
	if b.AllowanceLeft != 4 || b.Balance != 0 || !b.Period.Equal(store.MonthStart(e.Clock.Now())) {
		t.Errorf("new month: %+v", b)
	}
}

// TestMetering_LeasedAllowanceDoesNotLeakAcrossTheMonth: a busy user's allowance is
// leased in memory; at the month boundary the old month's lease is dropped and the new
// month starts whole, however many credits the instance held.
func TestMetering_LeasedAllowanceDoesNotLeakAcrossTheMonth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := e.Clock.Now()
	e.Clock.Advance(store.NextReset(now).Sub(now) - 30*time.Minute)
	f := e.meteredApp(t, "metering_enabled = true, credits_per_call = 1, free_credits = 50, rate_limit_per_minute = 0, access_token_ttl_seconds = 86400")
	if err := e.Store.SetPlan(context.Background(), f.Owner.ID, f.App.ID, store.Plan{MonthlyAllowance: 100000}, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	tok, user, _ := e.userToken(t, f, "openid")
	for range 30 {
		if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil); resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
	}
	e.Clock.Advance(time.Hour)
	for range 20 {
		if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil); resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
	}
	if err := e.GW.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := e.Store.CreditBalance(context.Background(), f.App.ID, user.ID)
	if b.AllowanceLeft != 100000-20 || b.Balance != 50 || !b.Period.Equal(store.MonthStart(e.Clock.Now())) {
		t.Errorf("after the month boundary: %+v, want allowance %d and the 50 free credits untouched", b, 100000-20)
	}
}

// newKey stores an API key as the portal does and returns it.
func (e *env) newKey(t testing.TB, f fixture, userID string, scopes ...string) (key, id string) {
	t.Helper()
	key, hash, hint := portal.NewKey(e.Hasher())
	k := store.NewAPIKey{AppID: f.App.ID, Name: "test key", Hash: hash, Hint: hint, Scopes: scopes}
	var err error
	if userID == "" {
		id, err = e.Store.CreateDeveloperKey(context.Background(), f.Owner.ID, k, e.Clock.Now())
	} else {
		id, err = e.Store.CreatePersonalKey(context.Background(), userID, k, e.Clock.Now())
	}
	if err != nil {
		t.Fatal(err)
	}
	return key, id
}

// TestMetering_APIKeys: developer and personal keys, as Bearer or X-API-Key; never in the
// query; refused keys all look like a malformed token; personal keys are metered.
func TestMetering_APIKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.meteredApp(t, "metering_enabled = true, credits_per_call = 2, free_credits = 10, rate_limit_per_minute = 0")
	e.addScopes(t, f, "search")
	e.exec(t, `INSERT INTO gateway_scope_rules (app_id, method, path_prefix, scope) VALUES ($1, '*', '/search', 'search')`, f.App.ID)
	_, user, _ := e.userToken(t, f, "openid")
	devKey, devID := e.newKey(t, f, "", "search")
	personal, _ := e.newKey(t, f, user.ID, "openid")
	gw := "/gw/" + f.App.Slug

	resp, body := e.call(t, "GET", gw+"/search/q", devKey, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("developer key as Bearer = %d %s", resp.StatusCode, body)
	}
	resp, body = e.call(t, "GET", gw+"/search/q", "", nil, "X-API-Key", devKey)
	if resp.StatusCode != 200 {
		t.Fatalf("developer key as X-API-Key = %d %s", resp.StatusCode, body)
	}
	// The personal key lacks the search scope: 403; elsewhere it calls as its user, metered.
	if resp, _ := e.call(t, "GET", gw+"/search/q", personal, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("personal key without the scope = %d, want 403", resp.StatusCode)
	}
	resp, _ = e.call(t, "GET", gw+"/x", "", nil, "X-API-Key", personal)
	if resp.StatusCode != 200 || remaining(t, resp) != 8 {
		t.Errorf("personal key = %d, remaining %q; want 200 and 8", resp.StatusCode, resp.Header.Get("AuthGPTs-Credits-Remaining"))
	}
	ev := e.events(t, f.App.ID)
	var keyCalls, charged int
	for _, x := range ev {
		if x.APIKeyID != "" {
			keyCalls++
		}
		if x.APIKeyID == devID && x.Credits != 0 {
			t.Errorf("a developer-key call was charged: %+v", x)
		}
		if x.UserID == user.ID && x.Credits == 2 {
			charged++
		}
	}
	if keyCalls != 4 || charged != 1 {
		t.Errorf("events: %d with a key, %d charged to the user; want 4 and 1", keyCalls, charged)
	}

	// Never in the query string.
	for _, q := range []string{"?api_key=" + devKey, "?access_token=" + devKey, "?key=" + devKey} {
		if resp, _ := e.call(t, "GET", gw+"/x"+q, "", nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("key in the query %s = %d, want 400", q[:strings.Index(q, "=")], resp.StatusCode)
		}
	}

	// Unknown, revoked and malformed: one 401 body, the same as a malformed token's.
	if err := e.Store.RevokeDeveloperKey(context.Background(), f.Owner.ID, devID, e.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, e.BaseURL, gw+"/x", devKey, http.StatusUnauthorized) // the NOTIFY evicts it from the cache
	_, wantBody := e.call(t, "GET", gw+"/x", "not-a-token", nil)
	for name, hdr := range map[string][]string{
		"revoked bearer":    {"Authorization", "Bearer " + devKey},
		"revoked x-api-key": {"X-API-Key", devKey},
		"unknown":           {"Authorization", "Bearer agk_" + strings.Repeat("A", 43)},
		"unknown x-api-key": {"X-API-Key", "agk_" + strings.Repeat("B", 43)},
		"garbage x-api-key": {"X-API-Key", "hello"},
	} {
		resp, body := e.call(t, "GET", gw+"/x", "", nil, hdr...)
		if resp.StatusCode != 401 || string(body) != string(wantBody) || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
			t.Errorf("%s: %d %s, want 401 %s", name, resp.StatusCode, body, wantBody)
		}
	}
	if strings.Contains(e.Logs.String(), devKey) || strings.Contains(e.Logs.String(), personal) {
		t.Error("a key is in the logs")
	}
}

// TestMetering_KeyRevocationReachesSecondInstanceWithinASecond mirrors token revocation.
func TestMetering_KeyRevocationReachesSecondInstanceWithinASecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	second, gw2 := e.secondInstance(t, nil)
	f := e.meteredApp(t, "rate_limit_per_minute = 0")
	_, user, _ := e.userToken(t, f, "openid")
	for _, owner := range []string{"", user.ID} {
		key, id := e.newKey(t, f, owner)
		for _, base := range []string{e.BaseURL, second} {
			for range 2 {
				if resp, body := do(t, base, "GET", "/gw/"+f.App.Slug+"/x", key, nil); resp.StatusCode != 200 {
					t.Fatalf("%s before revocation: %d %s", base, resp.StatusCode, body)
				}
			}
		}
		if e.GW.Stats().TokenCacheSize == 0 || gw2.Stats().TokenCacheSize == 0 {
			t.Fatal("the key is not cached on both instances: the test would prove nothing")
		}
		var err error
		if owner == "" {
			err = e.Store.RevokeDeveloperKey(context.Background(), f.Owner.ID, id, e.Clock.Now())
		} else {
			err = e.Store.RevokePersonalKey(context.Background(), []string{owner}, id, e.Clock.Now())
		}
		if err != nil {
			t.Fatal(err)
		}
		waitStatus(t, second, "/gw/"+f.App.Slug+"/x", key, http.StatusUnauthorized)
		waitStatus(t, e.BaseURL, "/gw/"+f.App.Slug+"/x", key, http.StatusUnauthorized)
	}
}

// TestMetering_KeysShareTheRateLimit: a personal key's calls count against its user's
// rate limit together with the user's OAuth calls; a developer key has its own bucket.
func TestMetering_KeysShareTheRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.meteredApp(t, "rate_limit_per_minute = 3")
	tok, user, _ := e.userToken(t, f, "openid")
	personal, _ := e.newKey(t, f, user.ID, "openid")
	dev, _ := e.newKey(t, f, "")
	gw := "/gw/" + f.App.Slug + "/x"
	for i, cred := range []string{tok, personal, tok} {
		if resp, body := e.call(t, "GET", gw, cred, nil); resp.StatusCode != 200 {
			t.Fatalf("call %d = %d %s", i, resp.StatusCode, body)
		}
	}
	if resp, _ := e.call(t, "GET", gw, "", nil, "X-API-Key", personal); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("fourth call of the user (by key) = %d, want 429 with Retry-After", resp.StatusCode)
	}
	if resp, _ := e.call(t, "GET", gw, dev, nil); resp.StatusCode != 200 {
		t.Errorf("developer key = %d, want 200 (its own bucket)", resp.StatusCode)
	}
}

// TestMetering_RefusalsCarryTheKnownRemaining: once the instance has spent for the user,
// a 403 for a missing scope and a 429 carry AuthGPTs-Credits-Remaining (what the last
// answer said; nothing was charged for the refusal).
func TestMetering_RefusalsCarryTheKnownRemaining(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.meteredApp(t, "metering_enabled = true, credits_per_call = 2, free_credits = 50, rate_limit_per_minute = 3")
	e.exec(t, `INSERT INTO gateway_scope_rules (app_id, method, path_prefix, scope) VALUES ($1, '*', '/admin', 'admin')`, f.App.ID)
	tok, _, _ := e.userToken(t, f, "openid")
	gw := "/gw/" + f.App.Slug
	resp, body := e.call(t, "GET", gw+"/x", tok, nil)
	if resp.StatusCode != 200 || remaining(t, resp) != 48 {
		t.Fatalf("first call = %d, remaining %q: %s; want 200 and 48", resp.StatusCode, resp.Header.Get("AuthGPTs-Credits-Remaining"), body)
	}
	if resp, _ = e.call(t, "GET", gw+"/admin", tok, nil); resp.StatusCode != http.StatusForbidden || remaining(t, resp) != 48 {
		t.Errorf("insufficient scope = %d, remaining %q; want 403 and 48", resp.StatusCode, resp.Header.Get("AuthGPTs-Credits-Remaining"))
	}
	for range 2 {
		e.call(t, "GET", gw+"/x", tok, nil)
	}
	if resp, _ = e.call(t, "GET", gw+"/x", tok, nil); resp.StatusCode != http.StatusTooManyRequests || remaining(t, resp) != 44 {
		t.Errorf("rate limited = %d, remaining %q; want 429 and 44", resp.StatusCode, resp.Header.Get("AuthGPTs-Credits-Remaining"))
	}
}

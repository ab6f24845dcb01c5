package gateway_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/store"
)

func TestUsage_WrittenInBatchesNotPerCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *gateway.Config) { c.UsageBatchSize, c.UsageFlushInterval = 50, time.Hour })
	f := e.newApp(t, store.ClientKindGPT, "rate_limit_per_minute = 0")
	tok, user, grant := e.userToken(t, f, "openid")
	const calls = 200
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range calls / 8 {
				if resp, _ := e.call(t, "GET", "/gw/"+f.App.Slug+"/x", tok, nil); resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	ev := e.events(t, f.App.ID)
	st := e.GW.Stats()
	if len(ev) != calls || st.UsageEvents != calls {
		t.Fatalf("stored %d events (stats %d), want %d", len(ev), st.UsageEvents, calls)
	}
	// One COPY per batch of 50 (a partial batch or two when a flush catches the buffer
	// mid-way), never one statement per call.
	if st.UsageBatches < calls/50 || st.UsageBatches > calls/50+3 {
		t.Errorf("%d batches for %d events, want about %d", st.UsageBatches, calls, calls/50)
	}
	for _, x := range ev {
		if x.UserID != user.ID || x.ClientID != f.Client.ID || x.Method != "GET" || x.Route != "/x" || x.Status != 200 || x.LatencyMicros <= 0 {
			t.Fatalf("event %+v", x)
		}
	}
	// last_used_at moves with the batch, not with a write per call.
	var grantUsed, clientUsed *time.Time
	if err := e.Store.DB().QueryRow(`SELECT (SELECT last_used_at FROM grants WHERE id = $1), (SELECT last_used_at FROM clients WHERE id = $2)`,
		grant, f.Client.ID).Scan(&grantUsed, &clientUsed); err != nil {
		t.Fatal(err)
	}
	if grantUsed == nil || clientUsed == nil {
		t.Errorf("last_used_at: grant %v, client %v; want both set", grantUsed, clientUsed)
	}
}

func TestUsage_RolledUpHourlyOncePerEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Tokens live a day (ChatGPT refreshes rarely), so one still works an hour later.
	f := e.newApp(t, store.ClientKindGPT, "rate_limit_per_minute = 0, metering_enabled = true, credits_per_call = 2, free_credits = 100, access_token_ttl_seconds = 86400")
	tokA, userA, _ := e.userToken(t, f, "openid")
	tokB, userB, _ := e.userToken(t, f, "openid")
	hour1 := e.Clock.Now().UTC().Truncate(time.Hour)
	for _, c := range []struct{ tok, path string }{{tokA, "/x"}, {tokA, "/x"}, {tokA, "/fail"}, {tokB, "/x"}} {
		e.call(t, "GET", "/gw/"+f.App.Slug+c.path, c.tok, nil)
	}
	e.Clock.Advance(time.Hour)
	e.call(t, "GET", "/gw/"+f.App.Slug+"/missing", tokA, nil)
	e.events(t, f.App.ID) // flush

	// Two instances rolling up at once take disjoint events.
	e2 := gateway.New(gateway.Config{Store: e.Store, Keys: e.Instance.Keys, BaseURL: e.Config.BaseURL, RollupInterval: -1})
	var wg sync.WaitGroup
	var total atomic.Int64
	for _, g := range []*gateway.Gateway{e.GW, e2, e.GW, e2} {
		wg.Go(func() {
			n, err := g.RollUp(context.Background())
			if err != nil {
				t.Error(err)
			}
			total.Add(int64(n))
		})
	}
	wg.Wait()
	if total.Load() != 5 {
		t.Errorf("rolled up %d events, want 5", total.Load())
	}
	rows, err := e.Store.UsageHourlyByApp(context.Background(), f.App.ID, hour1, hour1.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		hour time.Time
		user string
	}
	got := map[key]store.UsageHour{}
	for _, r := range rows {
		got[key{r.Hour.UTC(), r.UserID}] = r
	}
	a1, b1, a2 := got[key{hour1, userA.ID}], got[key{hour1, userB.ID}], got[key{hour1.Add(time.Hour), userA.ID}]
	if len(rows) != 3 || a1.Calls != 3 || a1.Calls2xx != 2 || a1.Calls5xx != 1 || a1.Credits != 4 ||
		b1.Calls != 1 || b1.Credits != 2 || a2.Calls != 1 || a2.Calls4xx != 1 || a2.Credits != 2 {
		t.Errorf("hourly rows = %+v", rows)
	}
	for _, r := range rows {
		var n int64
		for _, b := range r.LatencyBuckets {
			n += b
		}
		if n != r.Calls || r.ClientID != f.Client.ID || r.LatencySumUS <= 0 {
			t.Errorf("row %+v: histogram holds %d calls", r, n)
		}
		if p := store.LatencyPercentile(r.LatencyBuckets, 0.95); p <= 0 {
			t.Errorf("p95 = %v", p)
		}
	}
	// Running again adds nothing.
	if n, err := e.GW.RollUp(context.Background()); n != 0 || err != nil {
		t.Errorf("second roll-up took %d events (%v), want 0", n, err)
	}
}

func TestUsage_RollUpConcurrentInstancesCountEachEventOnce(t *testing.T) {
	t.Parallel()
	st := newEnv(t).Store
	ctx := context.Background()
	app := "8a0e5a52-3a9f-4c35-8f44-6f1f7c1b7a11"
	now := time.Now().UTC()
	const n = 20000
	events := make([]store.UsageEvent, n)
	for i := range events {
		events[i] = store.UsageEvent{At: now.Add(-time.Duration(i%3) * time.Hour), AppID: app, ClientID: "agpt_c", Method: "GET",
			Route: "/r", Status: 200, LatencyMicros: int64(i % 5000), Credits: 1}
	}
	if err := st.InsertUsageEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				k, err := st.RollUpUsage(ctx, 1000)
				if err != nil {
					t.Error(err)
					return
				}
				if k == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	var calls, credits int64
	if err := st.DB().QueryRow(`SELECT sum(calls), sum(credits) FROM usage_hourly WHERE app_id = $1`, app).Scan(&calls, &credits); err != nil {
		t.Fatal(err)
	}
	if calls != n || credits != n {
		t.Errorf("roll-ups hold %d calls and %d credits, want %d each", calls, credits, n)
	}
}

func TestUsage_GracefulShutdownFlushesEveryAnsweredCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := e.newApp(t, store.ClientKindGPT, "rate_limit_per_minute = 0")
	tok, _, _ := e.userToken(t, f, "openid")

	// A separate instance on a real listener, built and stopped as `authgpts serve` does
	// it: nothing is flushed before shutdown (1 h interval, huge batches).
	cfg := e.Config
	cfg.Gateway = func(c *gateway.Config) {
		c.UsageFlushInterval, c.UsageBatchSize, c.RollupInterval = time.Hour, 1<<20, -1
	}
	srv, err := handlers.NewServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	gw := srv.Gateway
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()

	var answered atomic.Int64
	started := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	for range 8 {
		wg.Go(func() {
			for range 500 { // bounded: the loop ends by itself
				req, _ := http.NewRequest("GET", base+"/gw/"+f.App.Slug+"/x", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					return // the server is shutting down
				}
				_, rerr := readAll(resp)
				if rerr == nil && resp.StatusCode == 200 {
					answered.Add(1)
					once.Do(func() { close(started) })
				}
			}
		})
	}
	<-started
	for answered.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	var stored int64
	if err := e.Store.DB().QueryRow(`SELECT count(*) FROM usage_events WHERE app_id = $1 AND status = 200`, f.App.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != answered.Load() || stored == 0 {
		t.Errorf("stored %d events, the clients got %d answers", stored, answered.Load())
	}
	if s := gw.Stats(); s.UsageBatches != 1 || s.UsageBuffered != 0 {
		t.Errorf("stats %+v, want everything in the one batch written at Close", s)
	}
}

func TestUsage_RolledUpRawEventsArePrunedAfterRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *gateway.Config) { c.UsageRetention = 30 * 24 * time.Hour })
	ctx := context.Background()
	app := "8a0e5a52-3a9f-4c35-8f44-6f1f7c1b7a12"
	now := e.Clock.Now().UTC()
	mk := func(at time.Time) store.UsageEvent {
		return store.UsageEvent{At: at, AppID: app, ClientID: "agpt_c", Method: "GET", Route: "/r", Status: 200, LatencyMicros: 500, Credits: 1}
	}
	old, recent := now.Add(-40*24*time.Hour), now.Add(-time.Hour)
	if err := e.Store.InsertUsageEvents(ctx, []store.UsageEvent{mk(old), mk(old), mk(recent)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GW.RollUp(ctx); err != nil {
		t.Fatal(err)
	}
	// An old event that arrives late (not rolled up yet) is never pruned before it counts.
	if err := e.Store.InsertUsageEvents(ctx, []store.UsageEvent{mk(old)}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Store.PruneUsageEvents(ctx, now.Add(-30*24*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("prune removed %d events (%v) before the new one was rolled up, want 0 (the two old ones went already)", n, err)
	}
	var raw, pending, calls int
	_ = e.Store.DB().Get(&raw, `SELECT count(*) FROM usage_events WHERE app_id = $1`, app)
	_ = e.Store.DB().Get(&pending, `SELECT count(*) FROM usage_events WHERE app_id = $1 AND NOT rolled_up`, app)
	if raw != 2 || pending != 1 {
		t.Fatalf("raw events = %d (pending %d), want the recent one and the late old one", raw, pending)
	}
	if _, err := e.GW.RollUp(ctx); err != nil {
		t.Fatal(err)
	}
	_ = e.Store.DB().Get(&raw, `SELECT count(*) FROM usage_events WHERE app_id = $1`, app)
	_ = e.Store.DB().Get(&calls, `SELECT coalesce(sum(calls), 0) FROM usage_hourly WHERE app_id = $1`, app)
	if raw != 1 || calls != 4 {
		t.Errorf("after the next roll-up: %d raw events (want 1, the recent one), %d calls rolled up (want all 4)", raw, calls)
	}
}

// A path holding a NUL byte or invalid UTF-8 is recorded as valid text (escaped), so
// PostgreSQL never rejects the batch it is in and every call after it is recorded too,
// up to and including the last flush at shutdown.
func TestUsage_HostilePathsDoNotStopRecording(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.UsageFlushInterval = time.Hour })
	f := e.newApp(t, store.ClientKindGPT, "rate_limit_per_minute = 0")
	tok, _, _ := e.userToken(t, f, "openid")
	gw := "/gw/" + f.App.Slug
	long := "/" + strings.Repeat("é", 200) + "%ff" // the cut falls inside a two-byte character
	hostile := []struct{ path, want string }{
		{"/a%00b", "/a%00b"},
		{"/%ff", "/%FF"},
		{"/ok/%c3%28/%e2%82", "/ok/%C3(/%E2%82"},
		{"/x%0a%7f", "/x%0A%7F"},
		{long, "/" + strings.Repeat("é", 127)},
	}
	for _, h := range hostile {
		e.call(t, "GET", gw+h.path, tok, nil)
	}
	if err := e.GW.Flush(context.Background()); err != nil {
		t.Fatalf("flush after the hostile paths: %v", err)
	}
	const normal = 20
	for range normal {
		if resp, _ := e.call(t, "GET", gw+"/x", tok, nil); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if err := e.GW.Close(context.Background()); err != nil {
		t.Fatalf("shutdown flush: %v", err)
	}
	ev, err := e.Store.UsageEventsByApp(context.Background(), f.App.ID)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]int{}
	for _, x := range ev {
		routes[x.Route]++
	}
	if routes["/x"] != normal {
		t.Errorf("%d normal calls recorded, want %d (routes %v)", routes["/x"], normal, routes)
	}
	for _, h := range hostile {
		if routes[h.want] != 1 {
			t.Errorf("hostile path %.40q: stored routes %v, want %.40q once", h.path, routes, h.want)
		}
	}
	if s := e.GW.Stats(); s.UsageBuffered != 0 || s.UsageDropped != 0 {
		t.Errorf("stats %+v: want nothing left or dropped", s)
	}
}

// Calls still in an instance's memory when their user deletes the account must not
// link the (gone) user to usage when they are written later, on this instance or on
// another one that flushes after the deletion.
func TestUsage_BufferedEventsOfADeletedUserAreWrittenWithoutTheUser(t *testing.T) {
	hold := func(c *gateway.Config) { c.UsageFlushInterval, c.UsageBatchSize = time.Hour, 1<<20 }
	e := newEnv(t, hold)
	f := e.newApp(t, store.ClientKindGPT, "rate_limit_per_minute = 0, metering_enabled = true, credits_per_call = 1, free_credits = 100")
	tok, user, grant := e.userToken(t, f, "openid")
	other, otherUser, _ := e.userToken(t, f, "openid") // stays: its events keep their user

	// A second instance on the same database, holding its events too (its configuration
	// is the first one's, hold included).
	base2, gw2 := e.secondInstance(t, nil)

	for _, base := range []string{e.BaseURL, base2, e.BaseURL} {
		for _, tk := range []string{tok, other} {
			if resp, _ := do(t, base, "GET", "/gw/"+f.App.Slug+"/x", tk, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("call = %d", resp.StatusCode)
			}
		}
	}
	if n := e.GW.Stats().UsageBuffered + gw2.Stats().UsageBuffered; n != 6 {
		t.Fatalf("%d events buffered, want all 6 still in memory", n)
	}

	// The user deletes the account through /account (emailed code).
	c := e.userSession(t, grant)
	e.Clock.Advance(time.Minute)
	before := e.SMTP.Count(user.Email)
	if resp, _ := e.PostForm(t, c, "/account/delete", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("start delete = %d", resp.StatusCode)
	}
	code := e.SMTP.WaitFor(t, user.Email, before).Code()
	if resp, _ := e.PostForm(t, c, "/account/delete/confirm", url.Values{"code": {code}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm delete = %d", resp.StatusCode)
	}

	// Both instances write what they held, then the roll-up runs.
	for _, g := range []*gateway.Gateway{e.GW, gw2} {
		if err := g.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.GW.RollUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	var linked, kept, calls, otherCalls int
	db := e.Store.DB()
	_ = db.Get(&linked, `SELECT (SELECT count(*) FROM usage_events WHERE user_id = $1) + (SELECT count(*) FROM usage_hourly WHERE user_id = $1)
		+ (SELECT count(*) FROM usage_user_daily WHERE user_id = $1)`, user.ID)
	_ = db.Get(&kept, `SELECT count(*) FROM usage_events WHERE app_id = $1 AND user_id IS NULL AND status = 200`, f.App.ID)
	_ = db.Get(&calls, `SELECT coalesce(sum(calls), 0) FROM usage_hourly WHERE app_id = $1`, f.App.ID)
	_ = db.Get(&otherCalls, `SELECT coalesce(sum(calls), 0) FROM usage_hourly WHERE app_id = $1 AND user_id = $2`, f.App.ID, otherUser.ID)
	if linked != 0 {
		t.Errorf("%d usage rows still name the deleted user, want 0", linked)
	}
	if kept != 3 || calls != 6 || otherCalls != 3 {
		t.Errorf("anonymous events %d (want 3), calls rolled up %d (want 6), the other user's %d (want 3)", kept, calls, otherCalls)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/store"
)

// gatewayScenario compares a call through the gateway with the same call made directly
// to the upstream, at each concurrency level, with metering (1 credit per call) and rate
// limiting (a limit never reached, but counted) on.
//
// It starts the AuthGPTs router with its gateway, as serve builds them (the real signing
// key manager and LISTEN connection), on a loopback listener of this process, on a fresh
// database it drops afterwards. The access token comes from the real authorization-code
// flow (sign-in by emailed code read from /dev/mail, consent, token endpoint).
//
// The upstream stands in for a small JSON API: each call encodes a list of eight
// records (about 1 KiB of JSON) with encoding/json, after waiting upstreamDelay (0: no
// wait; a real API's database or disk time).
func gatewayScenario(ctx context.Context, dsn string, levels []int, d, upstreamDelay time.Duration, users int, out io.Writer) (err error) {
	if dsn == "" {
		return errors.New("DATABASE_URL is not set")
	}
	dbName := "authgpts_bench_gateway_" + randomID()
	benchDSN, err := freshDatabase(ctx, dsn, dbName)
	if err != nil {
		return err
	}
	defer func() {
		if derr := dropDatabase(context.WithoutCancel(ctx), dsn, dbName); err == nil {
			err = derr
		}
	}()
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	up := &http.Server{Handler: benchUpstream(upstreamDelay)}
	go up.Serve(upLn)
	defer up.Close()
	upstream := "http://" + upLn.Addr().String()

	// The floor: a bare httputil.ReverseProxy in front of the same upstream, with no
	// router, checks, metering or logging. What separates it from direct is the cost of
	// a second HTTP hop on this machine; what separates the gateway from it is ours.
	bareLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	upURL, _ := url.Parse(upstream)
	bareProxy := httputil.NewSingleHostReverseProxy(upURL)
	bareProxy.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	bare := &http.Server{Handler: bareProxy}
	go bare.Serve(bareLn)
	defer bare.Close()
	bareBase := "http://" + bareLn.Addr().String()

	// The AuthGPTs server with its gateway, built as serve builds it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base, _ := url.Parse("http://" + ln.Addr().String())
	srv, err := handlers.NewServer(ctx, handlers.Config{
		DatabaseURL: benchDSN,
		BaseURL:     base,
		Secret:      []byte("bench-secret-bench-secret-bench-secret-0123"),
		DevMode:     true,
		Migrate:     true,
		Log:         slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		return err
	}
	srv.Start()
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	gw := srv.Gateway

	env := &Env{BaseURL: base.String(), Store: srv.Store, DatabaseURL: benchDSN, runID: randomID(),
		Hasher:    srv.Derived.TokenHash,
		Transport: &http.Transport{MaxIdleConnsPerHost: 8, Proxy: nil}}
	token, many, slug, err := benchFixture(ctx, env, upstream, users)
	if err != nil {
		return err
	}
	for !gw.Stats().CacheEnabled { // LISTEN up
		time.Sleep(5 * time.Millisecond)
	}

	get := func(u string) func() *http.Request {
		return func() *http.Request { r, _ := http.NewRequest("GET", u, nil); return r }
	}
	gwURL := base.String() + "/gw/" + slug + "/items?limit=8"
	viaGateway := func() *http.Request {
		r, _ := http.NewRequest("GET", gwURL, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		return r
	}
	var next atomic.Uint64
	viaGatewayMany := func() *http.Request { // each call the next user's token
		r, _ := http.NewRequest("GET", gwURL, nil)
		r.Header.Set("Authorization", "Bearer "+many[next.Add(1)%uint64(len(many))])
		return r
	}
	manyName := fmt.Sprintf("gw-%du", len(many))
	targets := []struct {
		name   string
		newReq func() *http.Request
	}{
		{"direct", get(upstream + "/v1/items?limit=8")},
		{"bare", get(bareBase + "/v1/items?limit=8")},
		{"gw-1u", viaGateway},
		{manyName, viaGatewayMany},
	}
	// Many short alternating slices: the machine's background load changes by the
	// second, and each target then gets its share of every phase of it.
	rounds := max(2, int(d/(250*time.Millisecond)))
	fmt.Fprintf(out, "gateway vs direct (GET, ~1 KiB JSON upstream, upstream delay %s, metering and rate limiting on, %s per target and step\n"+
		"in %d alternating rounds; gw-1u: one user's token, %s: %d users' tokens in turn)\n", upstreamDelay, d, rounds, manyName, len(many))
	fmt.Fprintf(out, "%-5s %-8s %10s %9s %9s %11s %7s\n", "conc", "target", "req/s", "p50 ms", "p99 ms", "cpu µs/req", "errors")
	for _, c := range levels {
		// More idle connections than workers: with exactly c, a worker whose previous
		// connection is not back in the pool yet dials a new one, and the pool then
		// closes one, so every step would pay for connection churn.
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 1024, Proxy: nil}}
		for _, t := range targets { // warm up: connections, caches, credit leases
			load(ctx, client, c, d/5, t.newReq)
		}
		samples := make([]sample, len(targets))
		stopProfile := profile(fmt.Sprintf("gateway-c%d", c))
		for range rounds {
			for i, t := range targets {
				samples[i].run(ctx, client, c, d/time.Duration(rounds), t.newReq)
			}
		}
		stopProfile()
		res := make(map[string]result, len(targets))
		for i, t := range targets {
			r := samples[i].result()
			res[t.name] = r
			fmt.Fprintf(out, "%-5d %-8s %10.0f %9s %9s %11.1f %7d\n", c, t.name, r.rps(), ms(r.p50), ms(r.p99),
				float64(r.cpuPerRequest().Nanoseconds())/1000, r.errors)
			if r.errors > 0 {
				err = errors.Join(err, fmt.Errorf("%s at concurrency %d: %d failed requests", t.name, c, r.errors))
			}
		}
		dr, br := res["direct"], res["bare"]
		for _, name := range []string{"gw-1u", manyName} {
			gr := res[name]
			fmt.Fprintf(out, "%-5d %s: %.0f%% of the bare proxy, %.0f%% of direct; added p50 %s ms, p99 %s ms over direct\n",
				c, name, 100*gr.rps()/br.rps(), 100*gr.rps()/dr.rps(), ms(gr.p50-dr.p50), ms(gr.p99-dr.p99))
		}
		client.CloseIdleConnections()
	}
	if ferr := gw.Flush(ctx); ferr != nil {
		return errors.Join(err, ferr)
	}
	s := gw.Stats()
	fmt.Fprintf(out, "usage: %d events in %d batches, %d dropped, %d refused\n", s.UsageEvents, s.UsageBatches, s.UsageDropped, s.UsageRejected)
	return err
}

// benchUpstream is the stand-in API: about 1 KiB of JSON per call, encoded each time.
func benchUpstream(delay time.Duration) http.Handler {
	type item struct {
		ID          int       `json:"id"`
		Name        string    `json:"name"`
		Description string    `json:"description"`
		Tags        []string  `json:"tags"`
		PriceCents  int       `json:"price_cents"`
		InStock     bool      `json:"in_stock"`
		UpdatedAt   time.Time `json:"updated_at"`
	}
	updated := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			time.Sleep(delay)
		}
		n, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || n < 1 || n > 100 {
			n = 8
		}
		items := make([]item, n)
		for i := range items {
			items[i] = item{ID: 1000 + i, Name: "Item " + strconv.Itoa(i), Description: "A thing the API returns to " + r.Header.Get("X-AuthGPTs-User"),
				Tags: []string{"bench", "json"}, PriceCents: 199 * (i + 1), InStock: i%3 != 0, UpdatedAt: updated}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "count": n})
	})
}

// benchFixture creates a metered, rate-limited app pointing at upstream with a GPT
// client, and runs the code flow for the bench user (token) and for users more users
// (many), each signed in through the real email-code flow.
func benchFixture(ctx context.Context, env *Env, upstream string, users int) (token string, many []string, slug string, err error) {
	const redirect = "https://chatgpt.com/aip/g-bench/oauth/callback"
	seed, err := env.NewApp(ctx, "Bench API", store.ClientKindGPT, redirect)
	if err != nil {
		return "", nil, "", err
	}
	if _, err := env.Store.DB().ExecContext(ctx, `UPDATE apps SET upstream_url = $2, metering_enabled = $3, credits_per_call = 1,
		free_credits = 1000000000000, rate_limit_per_minute = 1000000000 WHERE id = $1`,
		seed.App.ID, upstream+"/v1", os.Getenv("BENCH_METER") != "off"); err != nil {
		return "", nil, "", err
	}
	toks, err := env.CodeFlowTokens(ctx, seed, "openid email", 1)
	if err != nil {
		return "", nil, "", err
	}
	for i := range users {
		c, err := env.SignIn(ctx, fmt.Sprintf("bench-user-%s-%d@example.com", env.runID, i))
		if err != nil {
			return "", nil, "", err
		}
		code, err := env.Authorize(ctx, c, seed, "openid email")
		if err != nil {
			return "", nil, "", err
		}
		tr, err := env.Token(ctx, c, seed, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {seed.RedirectURI}})
		if err != nil {
			return "", nil, "", err
		}
		many = append(many, tr.AccessToken)
	}
	return toks[0].AccessToken, many, seed.App.Slug, nil
}

// freshDatabase drops and recreates name on the server of dsn and returns its URL.
func freshDatabase(ctx context.Context, dsn, name string) (string, error) {
	admin, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name)); err != nil {
		return "", err
	}
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %q`, name)); err != nil {
		return "", err
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	u.Path = "/" + strings.TrimPrefix(name, "/")
	return u.String(), nil
}

// dropDatabase drops the database this scenario created, by its exact name.
func dropDatabase(ctx context.Context, dsn, name string) error {
	admin, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name))
	return err
}

// profile writes CPU, mutex-contention and blocking profiles of the step to
// $BENCH_PROFILE_DIR/name.{cpu,mutex,block}.prof when that is set (the gateway runs in
// this process, so this profiles it; nothing of the kind is in the server).
func profile(name string) func() {
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(dir + "/" + name + ".cpu.prof")
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	runtime.SetMutexProfileFraction(5)
	runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		for _, p := range []string{"mutex", "block"} {
			if pf, err := os.Create(dir + "/" + name + "." + p + ".prof"); err == nil {
				_ = pprof.Lookup(p).WriteTo(pf, 0)
				pf.Close()
			}
		}
		runtime.SetMutexProfileFraction(0)
		runtime.SetBlockProfileRate(0)
	}
}

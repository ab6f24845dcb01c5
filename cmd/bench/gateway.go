package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/handlers/mailer"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// gatewayScenario compares a call through the gateway with the same call made directly
// to the upstream, at each concurrency level, with metering (1 credit per call) and rate
// limiting (a limit never reached, but counted) on.
//
// Self-contained for now: it starts the AuthGPTs router with its gateway on a loopback
// listener of this process, on a fresh database "authgpts_bench_gateway", and signs the
// access token with the gateway's own key source. When the OAuth server's key manager
// and token endpoint are on main, the token comes from client_credentials instead.
func gatewayScenario(ctx context.Context, dsn string, levels []int, d time.Duration, out io.Writer) error {
	if dsn == "" {
		return errors.New("DATABASE_URL is not set")
	}
	benchDSN, err := freshDatabase(ctx, dsn, "authgpts_bench_gateway")
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, benchDSN)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := store.Migrate(ctx, st.DB().DB); err != nil {
		return err
	}

	// The upstream: a small JSON API on loopback.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"items":[1,2,3]}`)
	})}
	go up.Serve(upLn)
	defer up.Close()
	upstream := "http://" + upLn.Addr().String()

	// The AuthGPTs server with its gateway.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base, _ := url.Parse("http://" + ln.Addr().String())
	key, err := oauth.GenerateKey(oauth.AlgRS256)
	if err != nil {
		return err
	}
	keys := staticKeys{oauth.NewKeySet(key)}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	gw := gateway.New(gateway.Config{Store: st, Keys: keys, BaseURL: base, DatabaseURL: benchDSN, Log: log})
	gw.Start()
	router := handlers.NewRouter(handlers.Deps{Store: st, Mail: mailer.NewDevMailbox(log, time.Now), Log: log, BaseURL: base,
		Secret: []byte("bench-secret-bench-secret-bench-secret-0123"), Gateway: gw})
	srv := &http.Server{Handler: router}
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = gw.Close(sctx)
	}()

	token, slug, err := benchFixture(ctx, st, keys.ks, base.String(), upstream)
	if err != nil {
		return err
	}
	for !gw.Stats().CacheEnabled { // LISTEN up
		time.Sleep(5 * time.Millisecond)
	}

	direct := func() *http.Request {
		r, _ := http.NewRequest("GET", upstream+"/v1/items?limit=3", nil)
		return r
	}
	viaGateway := func() *http.Request {
		r, _ := http.NewRequest("GET", base.String()+"/gw/"+slug+"/items?limit=3", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		return r
	}
	fmt.Fprintf(out, "gateway vs direct (GET, metering and rate limiting on, %s per step)\n", d)
	fmt.Fprintf(out, "%-5s %-8s %10s %9s %9s %7s\n", "conc", "target", "req/s", "p50 ms", "p99 ms", "errors")
	for _, c := range levels {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxIdleConns: 4 * c, Proxy: nil}}
		load(ctx, client, c, d/5, viaGateway) // warm up: connections, caches, credit row
		dr := load(ctx, client, c, d, direct)
		stopProfile := profile(fmt.Sprintf("gateway-c%d", c))
		gr := load(ctx, client, c, d, viaGateway)
		stopProfile()
		fmt.Fprintf(out, "%-5d %-8s %10.0f %9s %9s %7d\n", c, "direct", dr.rps(), ms(dr.p50), ms(dr.p99), dr.errors)
		fmt.Fprintf(out, "%-5d %-8s %10.0f %9s %9s %7d\n", c, "gateway", gr.rps(), ms(gr.p50), ms(gr.p99), gr.errors)
		fmt.Fprintf(out, "%-5d added p50 %s ms, p99 %s ms; throughput %.0f%% of direct\n", c, ms(gr.p50-dr.p50), ms(gr.p99-dr.p99), 100*gr.rps()/dr.rps())
		client.CloseIdleConnections()
	}
	if err := gw.Flush(ctx); err != nil {
		return err
	}
	s := gw.Stats()
	fmt.Fprintf(out, "usage: %d events in %d batches, %d dropped\n", s.UsageEvents, s.UsageBatches, s.UsageDropped)
	return nil
}

type staticKeys struct{ ks *oauth.KeySet }

func (s staticKeys) KeySet() *oauth.KeySet { return s.ks }

// benchFixture creates a metered, rate-limited app pointing at upstream, a user with a
// grant, and an access token for it.
func benchFixture(ctx context.Context, st *store.Store, ks *oauth.KeySet, issuer, upstream string) (token, slug string, err error) {
	owner, err := st.EnsureUser(ctx, fmt.Sprintf("bench-dev-%d@example.com", time.Now().UnixNano()))
	if err != nil {
		return "", "", err
	}
	user, err := st.EnsureUser(ctx, fmt.Sprintf("bench-user-%d@example.com", time.Now().UnixNano()))
	if err != nil {
		return "", "", err
	}
	app, client, err := st.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "Bench API", UpstreamURL: upstream + "/v1",
		Client: store.NewClient{ID: oauth.NewClientID(), Name: "Bench GPT", Kind: store.ClientKindGPT}}, time.Now())
	if err != nil {
		return "", "", err
	}
	db := st.DB()
	if _, err := db.ExecContext(ctx, `UPDATE apps SET metering_enabled = $2, credits_per_call = 1, free_credits = 1000000000000,
		rate_limit_per_minute = 1000000000 WHERE id = $1`, app.ID, os.Getenv("BENCH_METER") != "off"); err != nil {
		return "", "", err
	}
	var grant string
	if err := db.GetContext(ctx, &grant, `INSERT INTO grants (user_id, client_id, app_id, scopes) VALUES ($1, $2, $3, '{openid,email}') RETURNING id`,
		user.ID, client.ID, app.ID); err != nil {
		return "", "", err
	}
	now := time.Now()
	token, err = ks.SignAccessToken(oauth.AccessClaims{Issuer: issuer, Subject: user.ID, ClientID: client.ID, Scope: "openid email",
		JTI: "bench", GrantID: grant, Audience: []string{issuer + "/gw/" + app.Slug}, IssuedAt: now, Expiry: now.Add(time.Hour),
		Email: user.Email})
	return token, app.Slug, err
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

// profile writes a CPU profile of the step to $BENCH_CPUPROFILE_DIR/name.prof when set.
func profile(name string) func() {
	dir := os.Getenv("BENCH_CPUPROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(dir + "/" + name + ".prof")
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

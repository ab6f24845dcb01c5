package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/webhook"
)

// The webhooks scenario measures delivery to a local HTTPS receiver: how many events a
// second one instance delivers from a full outbox, and the lag from an event's commit to
// its arrival while the gateway serves c=8 load, with the gateway's throughput with and
// without webhooks running.
func init() {
	Register(Scenario{Name: "webhooks", Order: 70, Standalone: func(ctx context.Context, env *Env, levels []int, lim Limits, out io.Writer) error {
		return webhooksScenario(ctx, env.DatabaseURL, lim.Duration, out)
	}})
}

// benchReceiver records each webhook's arrival and its event timestamp (set in the
// transaction that wrote it, just before the commit).
type benchReceiver struct {
	mu   sync.Mutex
	lags []time.Duration
	n    int
	want int
	done chan struct{}
}

func (b *benchReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		Timestamp time.Time `json:"timestamp"`
	}
	_ = json.NewDecoder(r.Body).Decode(&p)
	arrived := time.Now()
	b.mu.Lock()
	b.lags = append(b.lags, arrived.Sub(p.Timestamp))
	b.n++
	if b.want > 0 && b.n == b.want {
		close(b.done)
	}
	b.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// expect resets the receiver to wait for n deliveries.
func (b *benchReceiver) expect(n int) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lags, b.n, b.want, b.done = nil, 0, n, make(chan struct{})
	return b.done
}

func (b *benchReceiver) percentiles() (p50, p99 time.Duration, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := slices.Clone(b.lags)
	if len(all) == 0 {
		return 0, 0, 0
	}
	slices.Sort(all)
	return all[len(all)/2], all[len(all)*99/100], len(all)
}

func webhooksScenario(ctx context.Context, dsn string, d time.Duration, out io.Writer) (err error) {
	if dsn == "" {
		return errors.New("DATABASE_URL is not set")
	}
	dbName := "authgpts_bench_webhooks_" + randomID()
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
	up := &http.Server{Handler: benchUpstream(0)}
	go up.Serve(upLn)
	defer up.Close()
	upstream := "http://" + upLn.Addr().String()

	rcv := &benchReceiver{}
	rs := httptest.NewTLSServer(rcv)
	defer rs.Close()
	pool := x509.NewCertPool()
	pool.AddCert(rs.Certificate())
	policy := webhook.Policy{AllowAddrs: []string{rs.Listener.Addr().String()}, RootCAs: pool}

	// The AuthGPTs server as serve builds it (gateway and webhook worker running).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base, _ := url.Parse("http://" + ln.Addr().String())
	srv, err := handlers.NewServer(ctx, handlers.Config{
		DatabaseURL:   benchDSN,
		BaseURL:       base,
		Secret:        []byte("bench-secret-bench-secret-bench-secret-0123"),
		DevMode:       true,
		Migrate:       true,
		Log:           slog.New(slog.NewJSONHandler(io.Discard, nil)),
		WebhookPolicy: policy,
	})
	if err != nil {
		return err
	}
	srv.Start()
	go srv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	gw, st := srv.Gateway, srv.Store
	env := &Env{BaseURL: base.String(), Store: st, DatabaseURL: benchDSN, runID: randomID(),
		Hasher:    srv.Derived.TokenHash,
		Transport: &http.Transport{MaxIdleConnsPerHost: 8, Proxy: nil}}
	token, slug, err := benchFixture(ctx, env, upstream)
	if err != nil {
		return err
	}
	app, err := st.AppBySlug(ctx, slug)
	if err != nil {
		return err
	}
	key := srv.Derived.WebhookSecrets
	const endpoints = 4
	for i := 0; i < endpoints; i++ {
		id := store.NewUUID()
		whsec := webhook.NewSecret()
		sealed, err := webhook.Seal(key, id, whsec)
		if err != nil {
			return err
		}
		if err := st.CreateWebhookEndpoint(ctx, app.ID, store.NewWebhookEndpoint{ID: id, URL: rs.URL + fmt.Sprintf("/hooks/%d", i),
			Events: []string{store.EventUserConnected}, SecretSealed: sealed, SecretHint: webhook.SecretHint(whsec)}, time.Now()); err != nil {
			return err
		}
	}
	for !gw.Stats().CacheEnabled {
		time.Sleep(5 * time.Millisecond)
	}
	emit := func(ctx context.Context, n int) error {
		// n events in one transaction (the outbox's own statement, as a change writes it).
		_, err := st.DB().ExecContext(ctx, `SELECT webhook_emit($1, 'user.connected', jsonb_build_object('i', i), clock_timestamp())
			FROM generate_series(1, $2) i`, app.ID, n)
		return err
	}
	// 1. Throughput: a full outbox (5,000 events for each of 4 endpoints, committed in one
	// transaction) drained by the instance's worker (32 in flight, 4 per endpoint).
	const backlog = 5000
	done := rcv.expect(backlog * endpoints)
	if err := emit(ctx, backlog); err != nil { // one transaction: all due at its commit
		return err
	}
	start := time.Now()
	stopProfile := profile("webhooks-backlog")
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return errors.New("the backlog was not delivered within 5 minutes")
	}
	elapsed := time.Since(start)
	stopProfile()
	fmt.Fprintf(out, "webhooks: %d deliveries (%d events × %d endpoints) from a full outbox in %.2f s: %.0f deliveries/s (one instance, 32 in flight, 4 per endpoint)\n",
		backlog*endpoints, backlog, endpoints, elapsed.Seconds(), float64(backlog*endpoints)/elapsed.Seconds())

	// 2. The gateway at c=8 with no events, then with events
	// committed at a steady rate (one per transaction, 50/s, each to 4 endpoints).
	const conc = 8
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxIdleConns: 4 * conc, Proxy: nil}}
	viaGateway := func() *http.Request {
		r, _ := http.NewRequest("GET", base.String()+"/gw/"+slug+"/items?limit=8", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		return r
	}
	load(ctx, client, conc, d/4, viaGateway) // warm up
	off := load(ctx, client, conc, d, viaGateway)

	rcv.expect(0)
	lctx, stopEmit := context.WithCancel(ctx)
	var emitted int
	var emitWG sync.WaitGroup
	emitWG.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				if emit(lctx, 1) == nil {
					emitted++
				}
			}
		}
	})
	on := load(ctx, client, conc, d, viaGateway)
	stopEmit()
	emitWG.Wait()
	// Let the last ones land (bounded).
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, _, n := rcv.percentiles(); n >= emitted*endpoints {
			break
		}
	}
	p50, p99, n := rcv.percentiles()
	fmt.Fprintf(out, "webhooks: commit → delivery lag under c=%d gateway load: p50 %s ms, p99 %s ms (%d deliveries of %d events)\n",
		conc, ms(p50), ms(p99), n, emitted)
	fmt.Fprintf(out, "gateway c=%d: %.0f req/s (p50 %s ms, p99 %s ms) without webhooks; %.0f req/s (p50 %s ms, p99 %s ms) with deliveries running (%.0f%%); errors %d/%d\n",
		conc, off.rps(), ms(off.p50), ms(off.p99), on.rps(), ms(on.p50), ms(on.p99), 100*on.rps()/off.rps(), off.errors, on.errors)
	return nil
}

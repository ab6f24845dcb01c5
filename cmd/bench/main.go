// Command bench is the load generator of `make bench`: a separate process that drives a
// running AuthGPTs server over loopback with keep-alive connections and prints
// requests/s and p50/p99 latency per scenario and concurrency.
//
//	bench [SCENARIO] -base http://127.0.0.1:18080 [-concurrency 1,8,32] [-duration 4s]
//	      [-requests 200000] [-scenarios client_credentials,code_flow,...] [-json out.json]
//
// It seeds what it needs straight into the server's database (DATABASE_URL) and hashes
// client secrets with the server's root secret (AUTHGPTS_SECRET), so both must be those
// of the server. Scenarios live in their own files and register themselves (scenario.go);
// a standalone scenario (the gateway's, gateway.go) starts its own server in this
// process and needs only DATABASE_URL.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runBench(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runBench(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	base := fs.String("base", "http://127.0.0.1:18080", "server base URL (its AUTHGPTS_BASE_URL)")
	conc := fs.String("concurrency", "1,8,32", "comma-separated concurrency levels")
	duration := fs.Duration("duration", 4*time.Second, "measured time per scenario and concurrency")
	requests := fs.Int("requests", 200_000, "maximum measured requests per scenario and concurrency")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "unmeasured warm-up before each measurement")
	only := fs.String("scenarios", "", "comma-separated scenario names (default: all)")
	jsonOut := fs.String("json", "", "also write the results as JSON to this file")
	upstreamDelay := fs.Duration("upstream-delay", 0, "gateway scenario: time the stand-in API waits per call (its database time)")
	gatewayUsers := fs.Int("gateway-users", 16, "gateway scenario: users of the many-user target (each signs in; at most 25)")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") { // `bench gateway` names one scenario
		args = append([]string{"-scenarios", args[0]}, args[1:]...)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var levels []int
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad concurrency %q", s)
		}
		levels = append(levels, n)
	}
	var selected []Scenario
	external := false
	for _, sc := range scenarios() {
		if *only == "" || slices.Contains(strings.Split(*only, ","), sc.Name) {
			selected = append(selected, sc)
			external = external || sc.Standalone == nil
		}
	}
	if len(selected) == 0 {
		return fmt.Errorf("no scenario named %q", *only)
	}
	dsn, secret := getenv("DATABASE_URL"), getenv("AUTHGPTS_SECRET")
	if dsn == "" {
		return errors.New("DATABASE_URL is not set")
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	env := &Env{
		BaseURL:     strings.TrimSuffix(*base, "/"),
		Store:       st,
		DatabaseURL: dsn,
		Transport: &http.Transport{
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		UpstreamDelay: *upstreamDelay,
		GatewayUsers:  min(max(*gatewayUsers, 1), 25),
		runID:         randomID(),
	}
	if external {
		// The server's own scenarios: seed with its secret, and wait until it answers.
		if len(secret) < 32 {
			return errors.New("AUTHGPTS_SECRET must be the server's")
		}
		env.Hasher = oauth.DeriveKeys([]byte(secret)).TokenHash
		if err := waitReady(ctx, env); err != nil {
			return err
		}
	}
	lim := Limits{Duration: *duration, Requests: *requests, Warmup: *warmup, DB: dbCounters(st)}

	var results []Result
	fmt.Fprintf(out, "AuthGPTs load test against %s (%d CPUs here, Go %s); %s per point after %s warm-up, at most %d requests\n\n",
		env.BaseURL, runtime.NumCPU(), runtime.Version(), *duration, *warmup, *requests)
	const row = "%-20s %11s %9s %9s %10s %10s %10s %7s %10s\n"
	fmt.Fprintf(out, row, "scenario", "concurrency", "requests", "req/s", "p50", "p99", "max", "errors", "commits/op")
	for _, sc := range selected {
		if sc.Standalone != nil {
			fmt.Fprintln(out)
			if err := sc.Standalone(ctx, env, levels, lim, out); err != nil {
				return fmt.Errorf("%s: %w", sc.Name, err)
			}
			fmt.Fprintln(out)
			continue
		}
		newWorker, err := sc.Setup(ctx, env)
		if err != nil {
			return fmt.Errorf("%s: setup: %w", sc.Name, err)
		}
		for _, n := range levels {
			ops := make([]Op, n)
			for i := range ops {
				if ops[i], err = newWorker(i); err != nil {
					return fmt.Errorf("%s: worker %d: %w", sc.Name, i, err)
				}
			}
			r := run(ctx, sc.Name, ops, lim)
			results = append(results, r)
			fmt.Fprintf(out, row, r.Scenario, strconv.Itoa(r.Concurrency), strconv.Itoa(r.Requests), strconv.FormatFloat(r.PerSecond, 'f', 0, 64),
				msLabel(r.P50), msLabel(r.P99), msLabel(r.Max), strconv.Itoa(r.Errors),
				strconv.FormatFloat(r.WriteXactsPerOp, 'f', 2, 64))
			if r.FirstError != "" {
				fmt.Fprintf(out, "  first error: %s\n", r.FirstError)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.Errors > 0 {
			return fmt.Errorf("%s at concurrency %d: %d failed requests", r.Scenario, r.Concurrency, r.Errors)
		}
	}
	return nil
}

// dbCounters reads the cluster's count of write transactions so far: the next
// transaction ID (IDs are assigned only to transactions that write, so the difference
// counts write commits and aborts; reading it assigns none).
func dbCounters(st *store.Store) func(context.Context) (int64, error) {
	return func(ctx context.Context) (int64, error) {
		var xacts int64
		err := st.DB().QueryRowContext(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&xacts)
		return xacts, err
	}
}

// waitReady polls /readyz until the server answers (it may still be starting).
func waitReady(ctx context.Context, env *Env) error {
	c := env.Client(nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, _, err := env.get(ctx, c, "/readyz")
		if err == nil && resp.StatusCode == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server at %s not ready: %v", env.BaseURL, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func msLabel(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

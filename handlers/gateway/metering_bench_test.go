package gateway_test

import (
	"context"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

// BenchmarkMetering compares, in one run, a metered call at today's flat price with a
// call whose route has its own price and whose upstream reports the cost (held, then
// settled), and an API-key call with an OAuth-token call. Each reports calls/s and the
// p50 latency seen by the client; "direct" calls the upstream alone, so a case's p50
// minus direct's is what the gateway adds.
func BenchmarkMetering(b *testing.B) {
	e := newEnv(b)
	f := e.meteredApp(b, "metering_enabled = true, credits_per_call = 1, free_credits = 1000000000000, rate_limit_per_minute = 1000000000")
	e.price(b, f, "GET", "/cost", 3)
	tok, user, _ := e.userToken(b, f, "openid email")
	key, _ := e.newKey(b, f, user.ID, "openid", "email")
	gw := e.BaseURL + "/gw/" + f.App.Slug
	app, err := e.Store.AppByID(context.Background(), f.App.ID)
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name, url, header, value string
	}{
		{"warm-up", gw + "/items?limit=3", "Authorization", "Bearer " + tok},             // grows the user's credit lease first
		{"direct", app.UpstreamURL + "/items?limit=3", "Authorization", "Bearer " + tok}, // the upstream alone
		{"flat-price", gw + "/items?limit=3", "Authorization", "Bearer " + tok},
		{"route-price-settled", gw + "/cost?c=4", "Authorization", "Bearer " + tok},
		{"oauth-token", gw + "/items?limit=3", "Authorization", "Bearer " + tok},
		{"api-key", gw + "/items?limit=3", "X-API-Key", key},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var mu sync.Mutex
			var lat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					req, _ := http.NewRequest("GET", c.url, nil)
					req.Header.Set(c.header, c.value)
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mine = append(mine, time.Since(t0))
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
		})
	}
}

package gateway_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/authgpts/authgpts/store"
)

// benchCall measures one GET through the gateway (metering and rate limiting on, token
// cached) or, with direct, the same call to the upstream; the difference is the
// gateway's overhead.
func benchCall(b *testing.B, direct bool) {
	e := newEnv(b)
	f := e.newApp(b, store.ClientKindGPT, "metering_enabled = true, credits_per_call = 1, free_credits = 1000000000000, rate_limit_per_minute = 1000000000")
	tok, _, _ := e.userToken(b, f, "openid email")
	url := e.BaseURL + "/gw/" + f.App.Slug + "/items?limit=3"
	if direct {
		url = f.Upstream.URL + "/v1/items?limit=3"
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkGatewayCall(b *testing.B) { benchCall(b, false) }
func BenchmarkDirectCall(b *testing.B)  { benchCall(b, true) }

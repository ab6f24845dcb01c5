package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// result is one measured step.
type result struct {
	requests int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// load runs newReq with conc workers for d (bounded: it stops by itself) and measures
// each request's latency, reading the whole body.
func load(ctx context.Context, client *http.Client, conc int, d time.Duration, newReq func() *http.Request) result {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, conc)
	errs := make([]int, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Do(newReq())
				if err != nil {
					errs[w]++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs[w]++
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := result{elapsed: time.Since(start)}
	var all []time.Duration
	for w := range conc {
		all = append(all, lat[w]...)
		r.errors += errs[w]
	}
	r.requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d.Microseconds())/1000) }

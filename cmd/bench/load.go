package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"
)

// result is one measured step.
type result struct {
	requests int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	cpu      time.Duration
}

// cpuPerRequest is the process's CPU time per request: unlike requests per second it
// hardly depends on what else the shared machine runs meanwhile.
func (r result) cpuPerRequest() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.requests)
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r result) rps() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// load runs newReq with conc workers for d (bounded: it stops by itself) and measures
// each request's latency, reading the whole body.
func load(ctx context.Context, client *http.Client, conc int, d time.Duration, newReq func() *http.Request) result {
	var s sample
	s.run(ctx, client, conc, d, newReq)
	return s.result()
}

// sample accumulates the requests of one target over several measured steps, so
// targets can be measured in alternation (the machine's background load then weighs on
// each alike) and reported as one result.
type sample struct {
	lat     []time.Duration
	errors  int
	elapsed time.Duration
	cpu     time.Duration // CPU time of this whole process (load, upstream, proxy or gateway)
}

func (s *sample) run(ctx context.Context, client *http.Client, conc int, d time.Duration, newReq func() *http.Request) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	lat := make([][]time.Duration, conc)
	errs := make([]int, conc)
	var wg sync.WaitGroup
	start, cpu0 := time.Now(), processCPU()
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
	s.elapsed += time.Since(start)
	s.cpu += processCPU() - cpu0
	for w := range conc {
		s.lat = append(s.lat, lat[w]...)
		s.errors += errs[w]
	}
}

func (s *sample) result() result {
	r := result{elapsed: s.elapsed, errors: s.errors, requests: len(s.lat), cpu: s.cpu}
	if len(s.lat) > 0 {
		all := slices.Clone(s.lat)
		slices.Sort(all)
		r.p50, r.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return r
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d.Microseconds())/1000) }

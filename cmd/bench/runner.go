package main

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one scenario measured at one concurrency.
type Result struct {
	Scenario    string        `json:"scenario"`
	Concurrency int           `json:"concurrency"`
	Requests    int           `json:"requests"`
	Errors      int           `json:"errors"`
	Elapsed     time.Duration `json:"elapsed_ns"`
	PerSecond   float64       `json:"per_second"`
	P50         time.Duration `json:"p50_ns"`
	P99         time.Duration `json:"p99_ns"`
	Max         time.Duration `json:"max_ns"`
	FirstError  string        `json:"first_error,omitempty"`
	// WriteXactsPerOp is the database's write transactions per successful operation
	// over the measured phase: each one is a commit that waits for its WAL flush under
	// stock settings (transaction IDs are assigned only to transactions that write; the
	// whole cluster counts, so anything else writing to it counts too).
	WriteXactsPerOp float64 `json:"write_xacts_per_op"`
}

// Limits bound a measurement in count and in time; the warm-up is not measured.
type Limits struct {
	Duration time.Duration
	Requests int
	Warmup   time.Duration
	// DB, when set, reads the database's count of write transactions at the start and
	// the end of the measured phase.
	DB func(context.Context) (writeXacts int64, err error)
}

// run drives ops (one per worker) concurrently until the time or request limit and
// reports throughput and latency percentiles of the successful operations.
func run(ctx context.Context, name string, ops []Op, lim Limits) Result {
	// Warm-up: fill connection pools and caches.
	warm, cancelWarm := context.WithTimeout(ctx, lim.Warmup)
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for warm.Err() == nil {
				_ = op(warm)
			}
		}()
	}
	wg.Wait()
	cancelWarm()

	var xacts0 int64
	dbOK := lim.DB != nil
	if dbOK {
		var err error
		xacts0, err = lim.DB(ctx)
		dbOK = err == nil
	}
	measure, cancel := context.WithTimeout(ctx, lim.Duration)
	defer cancel()
	var issued atomic.Int64
	lat := make([][]time.Duration, len(ops))
	errs := make([]int, len(ops))
	firstErr := make([]error, len(ops))
	start := time.Now()
	for i, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 4096)
			for measure.Err() == nil && issued.Add(1) <= int64(lim.Requests) {
				t0 := time.Now()
				err := op(measure)
				d := time.Since(t0)
				if err != nil {
					if measure.Err() != nil {
						break // cut off by the deadline: not a failure of the server
					}
					errs[i]++
					if firstErr[i] == nil {
						firstErr[i] = err
					}
					continue
				}
				mine = append(mine, d)
			}
			lat[i] = mine
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var xacts1 int64
	if dbOK {
		var err error
		xacts1, err = lim.DB(ctx)
		dbOK = err == nil
	}

	var all []time.Duration
	res := Result{Scenario: name, Concurrency: len(ops), Elapsed: elapsed}
	for i := range ops {
		all = append(all, lat[i]...)
		res.Errors += errs[i]
		if firstErr[i] != nil && res.FirstError == "" {
			res.FirstError = firstErr[i].Error()
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res.Requests = len(all)
	if len(all) > 0 {
		res.PerSecond = float64(len(all)) / elapsed.Seconds()
		res.P50 = all[len(all)*50/100]
		res.P99 = all[min(len(all)-1, len(all)*99/100)]
		res.Max = all[len(all)-1]
		if dbOK {
			res.WriteXactsPerOp = float64(xacts1-xacts0) / float64(len(all))
		}
	}
	return res
}

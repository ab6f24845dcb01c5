package ratelimit_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/ratelimit"
	"github.com/authgpts/authgpts/store/storetest"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// instances returns n limiters on one database, as n server instances hold them.
func instances(t *testing.T, n int) (*store.Store, []*ratelimit.Limiter) {
	t.Helper()
	st := storetest.NewDB(t)
	ls := make([]*ratelimit.Limiter, n)
	for i := range ls {
		ls[i] = ratelimit.New(st, "test:", time.Minute)
	}
	return st, ls
}

// TestLimiter_LimitHoldsAcrossInstances: three instances letting calls of one key through
// at once never let more than the limit through together, and with no tokens stranded
// (each lease is one token at this limit) they let exactly the limit through.
func TestLimiter_LimitHoldsAcrossInstances(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 7, 19, 60, 500} {
		_, ls := instances(t, 3)
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for i := range 3 * limit {
			wg.Go(func() {
				ok, _, err := ls[i%3].Allow(context.Background(), "k", limit, t0)
				if err != nil {
					t.Error(err)
				}
				if ok {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		got := allowed.Load()
		if got > int64(limit) {
			t.Errorf("limit %d: %d calls let through by three instances, more than the limit", limit, got)
		}
		// Up to (instances − 1) leases may sit unspent on the other instances.
		if lease := max(int64(limit)/20, 1); got < int64(limit)-2*lease {
			t.Errorf("limit %d: only %d calls let through, want at least %d", limit, got, int64(limit)-2*lease)
		}
	}
}

// TestLimiter_RefillsAtTheLimitPerPeriodAndSaysHowLongToWait: an empty bucket refuses
// with the wait for the next token, and lets one call through once that time passed.
func TestLimiter_RefillsAtTheLimitPerPeriodAndSaysHowLongToWait(t *testing.T) {
	t.Parallel()
	_, ls := instances(t, 2)
	ctx := context.Background()
	for i := range 6 {
		if ok, _, err := ls[i%2].Allow(ctx, "k", 6, t0); !ok || err != nil {
			t.Fatalf("call %d of 6: allowed %v, %v", i+1, ok, err)
		}
	}
	ok, wait, err := ls[0].Allow(ctx, "k", 6, t0)
	if ok || err != nil || wait != 10*time.Second {
		t.Fatalf("7th call = %v, wait %v, %v; want refused with a 10 s wait (6 a minute)", ok, wait, err)
	}
	// The other instance learns it from the shared bucket, not from the first instance.
	if ok, wait, _ := ls[1].Allow(ctx, "k", 6, t0.Add(4*time.Second)); ok || wait != 6*time.Second {
		t.Fatalf("other instance 4 s later = %v, wait %v; want refused with 6 s left", ok, wait)
	}
	if ok, _, _ := ls[1].Allow(ctx, "k", 6, t0.Add(10*time.Second)); !ok {
		t.Fatal("10 s later a token has refilled, but the call was refused")
	}
	if ok, _, _ := ls[0].Allow(ctx, "k", 6, t0.Add(10*time.Second)); ok {
		t.Fatal("only one token refilled in 10 s, but a second call was let through")
	}
}

// TestLimiter_IdleInstanceGivesItsLeaseBack: tokens leased by an instance and not spent
// go back to the shared bucket once the key is idle there, so the other instance can use
// the whole limit.
func TestLimiter_IdleInstanceGivesItsLeaseBack(t *testing.T) {
	t.Parallel()
	_, ls := instances(t, 2)
	ctx := context.Background()
	const limit = 200 // leases of 10
	if ok, _, _ := ls[0].Allow(ctx, "k", limit, t0); !ok {
		t.Fatal("first call refused")
	}
	count := func(l *ratelimit.Limiter, now time.Time) int {
		n := 0
		for range limit {
			if ok, _, _ := l.Allow(ctx, "k", limit, now); ok {
				n++
			}
		}
		return n
	}
	if n := count(ls[1], t0); n != limit-10 {
		t.Fatalf("the other instance got %d calls, want %d (the limit less the first instance's lease)", n, limit-10)
	}
	// Still in use on the first instance: nothing goes back.
	if err := ls[0].Release(ctx, t0.Add(time.Second), false); err != nil {
		t.Fatal(err)
	}
	if n := count(ls[1], t0); n != 0 {
		t.Fatalf("a busy instance's lease went back: %d more calls", n)
	}
	if err := ls[0].Release(ctx, t0.Add(3*time.Second), false); err != nil {
		t.Fatal(err)
	}
	// The 9 tokens given back, plus the 10 that refilled in those 3 s (200 a minute).
	if n := count(ls[1], t0.Add(3*time.Second)); n != 9+10 {
		t.Fatalf("after the idle lease went back the other instance got %d calls, want 9 returned + 10 refilled", n)
	}
}

// TestLimiter_ChangedLimitAppliesAtOnce: a lower limit is not exceeded by tokens leased
// under the higher one.
func TestLimiter_ChangedLimitAppliesAtOnce(t *testing.T) {
	t.Parallel()
	_, ls := instances(t, 1)
	ctx := context.Background()
	if ok, _, _ := ls[0].Allow(ctx, "k", 1000, t0); !ok {
		t.Fatal("first call refused")
	}
	n := 0
	for range 10 {
		if ok, _, _ := ls[0].Allow(ctx, "k", 3, t0); ok {
			n++
		}
	}
	if n != 3 {
		t.Errorf("after lowering the limit to 3, %d calls were let through, want 3", n)
	}
	if ok, _, _ := ls[0].Allow(ctx, "other", 0, t0); !ok {
		t.Error("limit 0 means unlimited")
	}
}

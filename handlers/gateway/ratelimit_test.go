package gateway

import (
	"testing"
	"time"
)

func TestRateLimiter_BucketRefillsAndFollowsLimitChanges(t *testing.T) {
	t.Parallel()
	l := newRateLimiter()
	now := time.Date(2026, 11, 22, 10, 0, 59, 0, time.UTC)
	for i := range 6 {
		if ok, _ := l.allow("app:user", 6, now); !ok {
			t.Fatalf("call %d of 6 refused", i+1)
		}
	}
	ok, wait := l.allow("app:user", 6, now)
	if ok || wait != 10*time.Second {
		t.Fatalf("7th call = %v, wait %v; want refused with 10 s (6 per minute)", ok, wait)
	}
	// One second later is a new clock minute: a fixed window would allow six more here.
	if ok, _ := l.allow("app:user", 6, now.Add(time.Second)); ok {
		t.Error("a minute boundary gave a second burst")
	}
	if ok, _ := l.allow("app:user", 6, now.Add(10*time.Second)); !ok {
		t.Error("no call allowed after the refill interval")
	}
	if ok, _ := l.allow("app:other", 6, now); !ok {
		t.Error("another user shares the bucket")
	}
	// The developer raises the limit: the bucket grows.
	later := now.Add(2 * time.Minute)
	for i := range 60 {
		if ok, _ := l.allow("app:user", 60, later); !ok {
			t.Fatalf("call %d of a raised limit of 60 refused", i+1)
		}
	}
	if ok, _ := l.allow("app:user", 0, later); !ok {
		t.Error("limit 0 must mean unlimited")
	}
	l.sweep(later.Add(2 * time.Minute))
	for i := range l.shards {
		if n := len(l.shards[i].m); n != 0 {
			t.Fatalf("sweep kept %d refilled buckets", n)
		}
	}
}

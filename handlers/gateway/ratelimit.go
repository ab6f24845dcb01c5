package gateway

import (
	"hash/maphash"
	"sync"
	"time"
)

// rateLimiter counts calls per key in fixed one-minute windows: "N calls per minute" is
// what developers set and what a 429's Retry-After (the seconds left in the window) can
// state exactly. It lives in memory, per instance: behind a load balancer with k
// instances a user can make up to k×N calls a minute. A shared counter would cost a
// database round trip on every call, which the ≤ 1 ms overhead budget does not allow;
// credits, which are money, are the exact shared limit.
type rateLimiter struct {
	seed   maphash.Seed
	shards [64]rateShard
}

type rateShard struct {
	mu sync.Mutex
	m  map[string]*rateWindow
}

type rateWindow struct {
	minute int64 // Unix minute the count belongs to
	count  int
}

func newRateLimiter() *rateLimiter {
	l := &rateLimiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*rateWindow)
	}
	return l
}

// allow counts one call for key against limit calls per minute. When the limit is
// reached it returns false and the time until the window ends. limit <= 0 is unlimited.
func (l *rateLimiter) allow(key string, limit int, now time.Time) (bool, time.Duration) {
	if limit <= 0 {
		return true, 0
	}
	minute := now.Unix() / 60
	s := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.m[key]
	if w == nil {
		w = &rateWindow{}
		s.m[key] = w
	}
	if w.minute != minute {
		w.minute, w.count = minute, 0
	}
	if w.count >= limit {
		return false, time.Unix((minute+1)*60, 0).Sub(now)
	}
	w.count++
	return true, 0
}

// sweep forgets windows that ended.
func (l *rateLimiter) sweep(now time.Time) {
	minute := now.Unix() / 60
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, w := range s.m {
			if w.minute < minute {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

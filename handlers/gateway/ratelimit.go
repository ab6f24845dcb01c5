package gateway

import (
	"hash/maphash"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimiter gives each key (app, user) a golang.org/x/time/rate token bucket holding
// the app's per-minute limit and refilling at that rate: "N calls per minute" on
// average, a full minute's burst at most, and a 429's Retry-After is the exact wait for
// the next token (no double burst at a minute boundary, as fixed windows allow). It lives
// in memory, per instance: behind a load balancer with k instances a user can make up to
// k×N calls a minute. A shared counter would cost a database round trip on every call,
// which the ≤ 1 ms overhead budget does not allow; credits, which are money, are the
// exact shared limit.
type rateLimiter struct {
	seed   maphash.Seed
	shards [64]rateShard // sharded so concurrent users do not contend on one lock
}

type rateShard struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newRateLimiter() *rateLimiter {
	l := &rateLimiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*rate.Limiter)
	}
	return l
}

// allow takes one call for key against limit calls per minute. When none is left it
// returns false and the wait until the next call is allowed. limit <= 0 is unlimited.
func (l *rateLimiter) allow(key string, limit int, now time.Time) (bool, time.Duration) {
	if limit <= 0 {
		return true, 0
	}
	perSecond := rate.Limit(float64(limit) / 60)
	s := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	s.mu.Lock()
	lim := s.m[key]
	// A new key, or the developer changed the app's limit: start a full bucket at the
	// new limit (resizing would keep the old bucket's few tokens).
	if lim == nil || lim.Burst() != limit {
		lim = rate.NewLimiter(perSecond, limit)
		s.m[key] = lim
	}
	s.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return false, wait
	}
	return true, 0
}

// sweep forgets buckets that have refilled: a new one would be identical.
func (l *rateLimiter) sweep(now time.Time) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, lim := range s.m {
			if lim.TokensAt(now) >= float64(lim.Burst()) {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

package authserver

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter holds one golang.org/x/time/rate token bucket per client IP: n requests per
// period, bursts of n. It is per instance (a client spreading over k instances gets k
// times the rate), which is enough to stop one address from filling the clients table.
type ipLimiter struct {
	mu       sync.Mutex
	limit    rate.Limit
	burst    int
	refill   time.Duration // an idle bucket is full again after this long
	limiters map[string]*ipEntry
}

type ipEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxLimiterEntries bounds the map: past it, buckets idle long enough to be full are dropped.
const maxLimiterEntries = 100_000

func newIPLimiter(n int, period time.Duration) *ipLimiter {
	return &ipLimiter{limit: rate.Limit(float64(n) / period.Seconds()), burst: n, refill: period, limiters: make(map[string]*ipEntry)}
}

// allow takes a token for ip; when none is left it reports how long until one is.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.limiters[ip]
	if e == nil {
		if len(l.limiters) >= maxLimiterEntries {
			l.sweep(now)
		}
		e = &ipEntry{lim: rate.NewLimiter(l.limit, l.burst)}
		l.limiters[ip] = e
	}
	e.seen = now
	r := e.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops buckets idle long enough to have refilled: forgetting them changes nothing.
func (l *ipLimiter) sweep(now time.Time) {
	for ip, e := range l.limiters {
		if now.Sub(e.seen) >= l.refill {
			delete(l.limiters, ip)
		}
	}
}

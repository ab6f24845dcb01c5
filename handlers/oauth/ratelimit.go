package oauth

import (
	"sync"
	"time"
)

// ipLimiter is a token bucket per client IP: n requests per period, bursts of n. It is
// per instance (a client spreading over k instances gets k times the rate), which is
// enough to stop one address from filling the clients table.
type ipLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxLimiterEntries bounds the map: past it, full (idle) buckets are dropped.
const maxLimiterEntries = 100_000

func newIPLimiter(n int, period time.Duration) *ipLimiter {
	return &ipLimiter{rate: float64(n) / period.Seconds(), burst: float64(n), buckets: make(map[string]*bucket)}
}

// allow takes a token for ip; when none is left it reports how long until one is.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) >= maxLimiterEntries {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[ip] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// sweep drops buckets that have refilled: forgetting them changes nothing.
func (l *ipLimiter) sweep(now time.Time) {
	for ip, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, ip)
		}
	}
}

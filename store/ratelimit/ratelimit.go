// Package ratelimit is the one per-key rate limiter of AuthGPTs (the gateway's limit per
// user and app, the registration limit per IP address). Each key has a token bucket
// that holds up to the limit and refills at the limit per period, as
// golang.org/x/time/rate's buckets do, but the bucket lives in PostgreSQL
// (store.LeaseRateTokens) so that the limit holds across every instance.
//
// An instance does not ask the database on every call: it leases a few tokens at a
// time (leaseSize: a twentieth of the limit, between 1 and maxLease) and spends them in
// memory. Every call that is let through spent a token taken from the shared bucket, so
// the instances together never let through more than the limit. What a lease costs is
// the other way: tokens leased by one instance and not yet spent are not available to
// the others. An instance gives its unspent tokens back once the key has been idle on it
// for idleReturn, so a key is refused early by at most (instances − 1) leases, about 5%
// of its limit per other instance, and only for a few seconds.
//
// A call that finds its bucket empty remembers until when it is empty, so refused calls
// cost no database round trip either.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/authgpts/authgpts/store"
)

const (
	// maxLease bounds a lease: a busy key takes the database once per maxLease calls.
	maxLease = 1024
	// leaseDivisor makes a lease a twentieth of the limit (the tolerance above).
	leaseDivisor = 20
	// idleReturn is how long a key must be unused before its unspent tokens go back.
	idleReturn = 2 * time.Second
)

// Limiter is a set of shared token buckets, one per key. It is safe for concurrent use.
type Limiter struct {
	st     *store.Store
	prefix string        // the bucket keys' namespace, e.g. "gw:" or "register:"
	period time.Duration // a limit is so many calls per period
	seed   maphash.Seed
	shards [64]shard // sharded so that concurrent keys do not contend on one lock
}

type shard struct {
	mu sync.Mutex
	m  map[string]*bucket
}

// bucket is this instance's share of one key's shared bucket.
type bucket struct {
	mu         sync.Mutex
	dbKey      string    // the shared bucket's row: see bucketKey
	limit      int       // the limit the lease was taken under
	left       int64     // leased tokens not spent yet
	used       time.Time // the last call
	emptyUntil time.Time // the shared bucket had no whole token: refuse until then
	dropped    bool      // returned and removed from the map: get a new one
}

// New returns a limiter whose limits are calls per period, with bucket keys under prefix.
func New(st *store.Store, prefix string, period time.Duration) *Limiter {
	l := &Limiter{st: st, prefix: prefix, period: period, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[string]*bucket)
	}
	return l
}

// bucketKey names a key's row: the prefix and a hash of the key, so that any key (one
// holding a NUL byte, or a client IP that need not be stored in clear) makes valid text.
func (l *Limiter) bucketKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return l.prefix + hex.EncodeToString(sum[:16])
}

func (l *Limiter) shard(key string) *shard {
	return &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
}

// Allow takes one call for key against limit calls per period. When the bucket is empty
// it returns false and the wait until the next token. limit <= 0 is unlimited. An error
// means the shared bucket could not be read (the database is unreachable).
func (l *Limiter) Allow(ctx context.Context, key string, limit int, now time.Time) (bool, time.Duration, error) {
	if limit <= 0 {
		return true, 0, nil
	}
	s := l.shard(key)
	for {
		s.mu.Lock()
		b := s.m[key]
		if b == nil {
			b = &bucket{dbKey: l.bucketKey(key), limit: limit}
			s.m[key] = b
		}
		s.mu.Unlock()

		b.mu.Lock()
		if b.dropped {
			b.mu.Unlock()
			continue // returned meanwhile: take the new one
		}
		ok, wait, err := l.allowLocked(ctx, key, b, limit, now)
		b.mu.Unlock()
		return ok, wait, err
	}
}

// allowLocked spends a leased token, or leases more (b.mu is held: one key's leases on
// this instance go one at a time, and the calls behind a lease wait for it).
func (l *Limiter) allowLocked(ctx context.Context, key string, b *bucket, limit int, now time.Time) (bool, time.Duration, error) {
	b.used = now
	if b.limit != limit {
		// The developer changed the limit: tokens leased under the old one go back.
		if b.left > 0 {
			if err := l.st.ReturnRateTokens(ctx, b.dbKey, float64(limit), b.left); err != nil {
				return false, 0, err
			}
		}
		b.limit, b.left, b.emptyUntil = limit, 0, time.Time{}
	}
	if b.left > 0 {
		b.left--
		return true, 0, nil
	}
	if now.Before(b.emptyUntil) {
		return false, b.emptyUntil.Sub(now), nil
	}
	perSecond := float64(limit) / l.period.Seconds()
	lease, err := l.st.LeaseRateTokens(ctx, b.dbKey, float64(limit), perSecond, leaseSize(limit), now)
	if err != nil {
		return false, 0, err
	}
	if lease.Granted == 0 {
		wait := time.Duration(math.Ceil((1 - lease.Left) / perSecond * float64(time.Second)))
		b.emptyUntil = now.Add(wait)
		return false, wait, nil
	}
	b.left = lease.Granted - 1
	return true, 0, nil
}

// leaseSize is how many tokens one lease takes for a limit.
func leaseSize(limit int) int64 {
	return min(max(int64(limit)/leaseDivisor, 1), maxLease)
}

// Release gives the unspent tokens of keys idle since before now − idleReturn back to
// their shared buckets (all keys' when all is true, as at shutdown) and forgets them.
func (l *Limiter) Release(ctx context.Context, now time.Time, all bool) error {
	var firstErr error
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		keys := make([]string, 0, len(s.m))
		for k := range s.m {
			keys = append(keys, k)
		}
		s.mu.Unlock()
		for _, k := range keys {
			if err := l.release(ctx, s, k, now, all); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// release returns key's unspent tokens when it is idle (or all), and forgets the key.
// Lock order: a bucket's mu before its shard's, never the other way.
func (l *Limiter) release(ctx context.Context, s *shard, key string, now time.Time, all bool) error {
	s.mu.Lock()
	b := s.m[key]
	s.mu.Unlock()
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !all && !b.used.Before(now.Add(-idleReturn)) {
		return nil // in use again
	}
	if b.left > 0 {
		if err := l.st.ReturnRateTokens(ctx, b.dbKey, float64(b.limit), b.left); err != nil {
			return err // kept for the next try
		}
		b.left = 0
	}
	b.dropped = true
	s.mu.Lock()
	if s.m[key] == b {
		delete(s.m, key)
	}
	s.mu.Unlock()
	return nil
}

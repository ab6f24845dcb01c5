// Package loadcache is the read-through cache behind the OAuth server's client and app
// caches and the gateway's app cache. Entries live for a TTL; cross-instance
// invalidations (NOTIFY) evict them at once; concurrent loads of one key are merged; and
// a load that raced with an invalidation is returned to its callers but not kept, so a
// value read just before a change can never outlive the notice of that change.
//
// With RefreshAhead, a Get in the last part of an entry's life returns it and reloads it
// in the background, so a key read all the time never makes its callers wait for a
// load (a hot key expiring would otherwise stall every caller behind one query at each
// TTL); an entry is still never served past its TTL.
package loadcache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// Cache maps string keys to values of type V. The zero value is not usable; use New.
type Cache[V any] struct {
	ttl   time.Duration
	ahead time.Duration // RefreshAhead: reload in the background this long before expiry
	max   int           // past this many entries the cache starts over, so made-up keys cannot grow memory
	group singleflight.Group

	mu  sync.RWMutex
	m   map[string]entry[V]
	gen uint64 // bumped by every invalidation
	off bool   // disabled: nothing is kept, every Get loads
}

type entry[V any] struct {
	v          V
	expires    time.Time
	refreshing *atomic.Bool // set once a background reload of this entry started
}

// New returns an enabled cache whose entries live for ttl, holding at most max of them.
func New[V any](ttl time.Duration, max int) *Cache[V] {
	return &Cache[V]{ttl: ttl, max: max, m: make(map[string]entry[V])}
}

// RefreshAhead makes a Get within window of an entry's expiry start one background
// reload (merged with any other load of the key) and return the entry meanwhile.
// Call it before the cache is used.
func (c *Cache[V]) RefreshAhead(window time.Duration) *Cache[V] {
	c.ahead = min(window, c.ttl)
	return c
}

// Get returns the value for key, calling load when it is absent, expired at now, or the
// cache is disabled. A load error is returned and nothing is kept.
func (c *Cache[V]) Get(ctx context.Context, key string, now time.Time, load func(context.Context) (V, error)) (V, error) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		if c.ahead > 0 && !now.Before(e.expires.Add(-c.ahead)) && e.refreshing.CompareAndSwap(false, true) {
			go func() { _, _ = c.Load(context.WithoutCancel(ctx), key, key, now, load) }()
		}
		return e.v, nil
	}
	return c.Load(ctx, key, key, now, load)
}

// Load calls load for key whatever is cached and keeps the result. Concurrent loads with
// the same flight key are merged into one; callers that want a separate load (a reload
// after a lookup missed) pass another flight key. The load runs without the caller's
// cancellation, since other callers may be waiting for it.
func (c *Cache[V]) Load(ctx context.Context, key, flight string, now time.Time, load func(context.Context) (V, error)) (V, error) {
	v, err, _ := c.group.Do(flight, func() (any, error) {
		c.mu.RLock()
		gen := c.gen
		c.mu.RUnlock()
		v, err := load(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if !c.off && c.gen == gen { // nothing was invalidated while loading: safe to keep
			if len(c.m) >= c.max {
				c.m = make(map[string]entry[V])
			}
			c.m[key] = entry[V]{v: v, expires: now.Add(c.ttl), refreshing: new(atomic.Bool)}
		}
		c.mu.Unlock()
		return v, nil
	})
	if err != nil {
		var zero V
		return zero, err
	}
	return v.(V), nil
}

// Evict drops every entry for which drop reports true, and keeps no load that was
// running meanwhile.
func (c *Cache[V]) Evict(drop func(key string, v V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.m {
		if drop(k, e.v) {
			delete(c.m, k)
		}
	}
}

// Clear drops every entry (for instance after notifications may have been lost).
func (c *Cache[V]) Clear() { c.SetEnabled(c.Enabled()) }

// SetEnabled switches caching on or off; either way the cache starts over empty.
func (c *Cache[V]) SetEnabled(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.off = !on
	clear(c.m)
}

// Enabled reports whether values are kept.
func (c *Cache[V]) Enabled() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return !c.off
}

// Len returns the number of entries kept.
func (c *Cache[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

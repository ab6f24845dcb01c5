package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/authgpts/authgpts/store"
)

// Credit leases keep a database round trip off most metered calls without giving up
// exactness. While a user's balance is far from zero, an instance takes a lease of
// credits from it in one guarded UPDATE and spends them in memory; near zero (less than
// leaseReserve leases left) every call spends with its own guarded UPDATE, so the
// balance ends at exactly zero and no instance refuses a call while another holds
// credits the user could still spend.
//
// A user's first lease is leaseCalls calls' worth. Leases are sized to the user's pace:
// when one lasted less than leaseLast the next is twice as large (up to leaseMaxCalls),
// when one lasted more than four times that the next is half (down to leaseCalls). With
// fixed 64-call leases a busy user took a lease every few milliseconds, and whenever
// PostgreSQL took longer to answer than the last 16 calls took, all that user's calls
// queued behind it: one user's throughput was capped at 64 calls per database round
// trip, however many connections they used. A lease too large for the balance falls
// back to leaseCalls before spending per call.
//
// When a lease is half spent the next one is taken in the background, so a
// busy user's calls do not queue behind that UPDATE; a call that finds the lease empty
// while the refill runs waits for it. Unspent leased credits go back to the balance when
// idle for leaseIdle and when the gateway closes. The database balance therefore reads
// low by at most two leases per instance while a user is active.
const (
	leaseCalls    = 64
	leaseMaxCalls = 4096
	leaseLast     = 250 * time.Millisecond
	leaseReserve  = 4
	leaseIdle     = 10 * time.Second
	leaseBackoff  = time.Second // after a refused lease, spend per call for this long
	leaseTimeout  = 10 * time.Second
)

type creditLeases struct {
	st      *store.Store
	mu      sync.Mutex
	m       map[leaseKey]*lease
	refills sync.WaitGroup // background refills in flight
}

type leaseKey struct{ app, user string }

type lease struct {
	mu        sync.Mutex
	left      int64
	used      time.Time
	calls     int64     // size of the next lease in calls (0: leaseCalls)
	takenAt   time.Time // when the last lease was asked for
	noLeaseTo time.Time
	refill    chan struct{} // non-nil while a background refill runs; closed when it ends
	released  bool          // given back and dropped from the map: a new lease replaces it
}

func newCreditLeases(st *store.Store) *creditLeases {
	return &creditLeases{st: st, m: make(map[leaseKey]*lease)}
}

func (c *creditLeases) get(k leaseKey) *lease {
	c.mu.Lock()
	defer c.mu.Unlock()
	le := c.m[k]
	if le == nil {
		le = &lease{}
		c.m[k] = le
	}
	return le
}

// spend takes cost credits for one call; store.ErrNoCredits (with the balance) when the
// user has too few.
func (c *creditLeases) spend(ctx context.Context, appID, userID string, cost, free int64, now time.Time) (int64, error) {
	k := leaseKey{appID, userID}
	for {
		le := c.get(k)
		le.mu.Lock()
		if le.released {
			le.mu.Unlock()
			continue // released meanwhile: get makes a new one
		}
		le.used = now
		if le.left >= cost {
			le.left -= cost
			left := le.left
			if left < cost*le.size()/2 && le.refill == nil && now.After(le.noLeaseTo) {
				c.refillLocked(le, k, cost, free, now)
			}
			le.mu.Unlock()
			return left, nil
		}
		if wait := le.refill; wait != nil {
			le.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		left, err := c.spendLocked(ctx, le, k, cost, free, now)
		le.mu.Unlock()
		return left, err
	}
}

// spendLocked takes a lease now (none is running low in the background), or spends
// this call alone near zero. le.mu is held: one user's database spends on this instance
// go one at a time.
func (c *creditLeases) spendLocked(ctx context.Context, le *lease, k leaseKey, cost, free int64, now time.Time) (int64, error) {
	if now.After(le.noLeaseTo) {
		got, calls, err := c.take(ctx, k, le.nextSize(now), cost, free, now)
		if err != nil {
			return 0, err
		}
		le.calls = calls
		if got > 0 {
			le.left += got - cost
			return le.left, nil
		}
		le.noLeaseTo = now.Add(leaseBackoff)
	}
	return c.st.SpendCredits(ctx, k.app, k.user, cost, free, now)
}

// size is the size of the next lease in calls.
func (le *lease) size() int64 { return max(le.calls, leaseCalls) }

// nextSize sizes the lease about to be taken to the user's pace, from how long the
// last one lasted (le.mu is held).
func (le *lease) nextSize(now time.Time) int64 {
	calls, since := le.size(), now.Sub(le.takenAt)
	switch {
	case le.takenAt.IsZero():
	case since < leaseLast:
		calls = min(2*calls, leaseMaxCalls)
	case since > 4*leaseLast:
		calls = max(calls/2, leaseCalls)
	}
	le.takenAt = now
	return calls
}

// take leases calls×cost credits, or leaseCalls×cost when the balance is too low for
// that many; it returns the credits it got (0: refused, the balance is near zero) and
// the size it got them at.
func (c *creditLeases) take(ctx context.Context, k leaseKey, calls, cost, free int64, now time.Time) (int64, int64, error) {
	for {
		size := cost * calls
		got, err := c.st.LeaseCredits(ctx, k.app, k.user, size, size*leaseReserve, free, now)
		if err != nil || got > 0 || calls <= leaseCalls {
			return got, calls, err
		}
		calls = leaseCalls
	}
}

// refillLocked starts taking the next lease in the background (le.mu is held).
func (c *creditLeases) refillLocked(le *lease, k leaseKey, cost, free int64, now time.Time) {
	done := make(chan struct{})
	le.refill = done
	calls := le.nextSize(now)
	c.refills.Add(1)
	go func() {
		defer c.refills.Done()
		ctx, cancel := context.WithTimeout(context.Background(), leaseTimeout)
		defer cancel()
		got, calls, err := c.take(ctx, k, calls, cost, free, now)
		le.mu.Lock()
		giveBack := int64(0)
		switch {
		case err != nil || got == 0:
			// Refused (near zero) or failed: calls spend one by one for a while.
			le.noLeaseTo = now.Add(leaseBackoff)
		case le.released:
			giveBack = got // the lease was returned meanwhile: these credits go back too
		default:
			le.left += got
			le.calls = calls
		}
		le.refill = nil
		close(done)
		le.mu.Unlock()
		if giveBack > 0 {
			_ = c.st.RefundCredits(ctx, k.app, k.user, giveBack, now)
		}
	}()
}

// refund gives back the credits of a failed call: to the lease when there is one (it
// was charged from it or will be spent from it next), else to the balance.
func (c *creditLeases) refund(ctx context.Context, appID, userID string, amount int64, now time.Time) error {
	c.mu.Lock()
	le := c.m[leaseKey{appID, userID}]
	c.mu.Unlock()
	if le != nil {
		le.mu.Lock()
		defer le.mu.Unlock()
		if le.left > 0 && !le.released {
			le.left += amount
			return nil
		}
	}
	return c.st.RefundCredits(ctx, appID, userID, amount, now)
}

// release returns the unspent credits of leases idle since before idleBefore (all of
// them when idleBefore is zero, after the refills in flight have landed) to the
// database.
func (c *creditLeases) release(ctx context.Context, idleBefore time.Time, now time.Time) error {
	if idleBefore.IsZero() {
		c.refills.Wait()
	}
	c.mu.Lock()
	var keys []leaseKey
	for k, le := range c.m {
		if idleBefore.IsZero() || le.used.Before(idleBefore) {
			keys = append(keys, k)
		}
	}
	c.mu.Unlock()
	var firstErr error
	for _, k := range keys {
		c.mu.Lock()
		le := c.m[k]
		c.mu.Unlock()
		if le == nil {
			continue
		}
		le.mu.Lock()
		if le.refill != nil || (!idleBefore.IsZero() && !le.used.Before(idleBefore)) {
			le.mu.Unlock()
			continue // in use again, or a refill is landing: not idle
		}
		left := le.left
		le.left = 0
		var err error
		if left > 0 {
			err = c.st.RefundCredits(ctx, k.app, k.user, left, now)
		}
		if err != nil {
			le.left = left // keep them for the next try
			if firstErr == nil {
				firstErr = err
			}
		} else {
			le.released = true
			c.mu.Lock()
			if c.m[k] == le {
				delete(c.m, k)
			}
			c.mu.Unlock()
		}
		le.mu.Unlock()
	}
	return firstErr
}

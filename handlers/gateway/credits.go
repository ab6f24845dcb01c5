package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/authgpts/authgpts/store"
)

// Credit leases keep a database round trip off most metered calls without giving up
// exactness. While a user's balance is far from zero, an instance takes leaseCalls calls'
// worth of credits from it in one guarded UPDATE and spends them in memory; near zero
// (less than leaseReserve leases left) every call spends with its own guarded UPDATE, so
// the balance ends at exactly zero and no instance refuses a call while another holds
// credits the user could still spend. Unspent leased credits go back to the balance when
// idle for leaseIdle and when the gateway closes. The database balance therefore reads
// low by at most one lease per instance while a user is active.
const (
	leaseCalls   = 64
	leaseReserve = 4
	leaseIdle    = 10 * time.Second
	leaseBackoff = time.Second // after a refused lease, spend per call for this long
)

type creditLeases struct {
	st *store.Store
	mu sync.Mutex
	m  map[leaseKey]*lease
}

type leaseKey struct{ app, user string }

type lease struct {
	mu        sync.Mutex
	left      int64
	used      time.Time
	noLeaseTo time.Time
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
	le := c.get(leaseKey{appID, userID})
	le.mu.Lock()
	defer le.mu.Unlock()
	le.used = now
	if le.left >= cost {
		le.left -= cost
		return le.left, nil
	}
	if now.After(le.noLeaseTo) {
		size := cost * leaseCalls
		got, err := c.st.LeaseCredits(ctx, appID, userID, size, size*leaseReserve, free, now)
		if err != nil {
			return 0, err
		}
		if got > 0 {
			le.left += got - cost
			return le.left, nil
		}
		le.noLeaseTo = now.Add(leaseBackoff)
	}
	return c.st.SpendCredits(ctx, appID, userID, cost, free, now)
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
		if le.left > 0 {
			le.left += amount
			return nil
		}
	}
	return c.st.RefundCredits(ctx, appID, userID, amount, now)
}

// release returns the unspent credits of leases idle since before idleBefore (all of
// them when idleBefore is zero) to the database.
func (c *creditLeases) release(ctx context.Context, idleBefore time.Time, now time.Time) error {
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
		le.mu.Lock()
		if !idleBefore.IsZero() && !le.used.Before(idleBefore) {
			le.mu.Unlock()
			continue
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
			c.mu.Lock()
			delete(c.m, k)
			c.mu.Unlock()
		}
		le.mu.Unlock()
	}
	return firstErr
}

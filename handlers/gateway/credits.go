package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/authgpts/authgpts/store"
)

// Credit leases keep a database round trip off most metered calls without giving up
// exactness. While a user's credits (monthly allowance plus balance) are far from zero,
// an instance takes leaseCalls calls' worth of them in one guarded UPDATE and spends
// them in memory; near zero (less than leaseReserve leases left) every call takes its
// credits with its own guarded UPDATE, so the credits end at exactly zero and no
// instance refuses a call while another holds credits the user could still spend.
//
// A lease remembers how many of its credits came from the allowance and of which month:
// they are spent first, and at the month boundary the lease is given back (the old
// month's allowance credits then lapse, as the database's lazy reset makes them), so a
// new month always starts whole.
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
// When a lease is half spent the next one is taken in the background, so a busy user's
// calls do not queue behind that UPDATE; a call that finds the lease empty while the
// refill runs waits for it. Unspent leased credits go back to the balance when idle for
// leaseIdle, when the gateway closes and at the month boundary. The database therefore
// reads low by at most two leases per instance while a user is active.
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
	mu            sync.Mutex
	left          int64     // credits held in memory
	fromAllowance int64     // of left: allowance credits of month period, spent first
	period        time.Time // the month of those allowance credits
	dbLeft        int64     // what the database had left after this instance's last statement
	dbKnown       bool      // dbLeft comes from a statement (peek may report it)
	calls         int64     // size of the next lease in calls (0: leaseCalls)
	takenAt       time.Time // when the last lease was asked for
	used          time.Time
	noLeaseTo     time.Time
	refill        chan struct{} // non-nil while a background refill runs; closed when it ends
	released      bool          // given back and dropped from the map: a new lease replaces it
}

// hold is what one call took: the credits of each kind and the allowance's month, so a
// refund returns them where they came from, and what the caller has left.
type hold struct {
	fromAllowance, fromBalance int64
	period                     time.Time
	remaining                  int64
}

func (h hold) total() int64 { return h.fromAllowance + h.fromBalance }

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

// takeLocked takes cost credits from the lease in memory, the allowance part first.
func (le *lease) takeLocked(cost int64) hold {
	fa := min(le.fromAllowance, cost)
	le.left -= cost
	le.fromAllowance -= fa
	return hold{fromAllowance: fa, fromBalance: cost - fa, period: le.period, remaining: le.dbLeft + le.left}
}

// addLocked adds what a statement took to the lease.
func (le *lease) addLocked(t store.Take) {
	le.left += t.Total()
	le.fromAllowance += t.FromAllowance
	le.period = t.Period
	le.dbLeft, le.dbKnown = t.Remaining(), true
}

// spend holds cost credits for one call; store.ErrNoCredits (with what is left in the
// hold's remaining) when the user has too few.
func (c *creditLeases) spend(ctx context.Context, m store.Metering, cost int64, now time.Time) (hold, error) {
	k := leaseKey{m.AppID, m.UserID}
	month := store.MonthStart(now)
	for {
		le := c.get(k)
		le.mu.Lock()
		if le.released {
			le.mu.Unlock()
			continue // released meanwhile: get makes a new one
		}
		le.used = now
		if le.left > 0 && le.period.Before(month) && le.refill == nil {
			// A new month: the lease's allowance credits lapse; give the rest back.
			if err := c.giveBackLocked(ctx, le, k, now); err != nil {
				le.mu.Unlock()
				return hold{}, err
			}
		}
		if le.left >= cost && !le.period.Before(month) {
			h := le.takeLocked(cost)
			if le.left < cost*le.size()/2 && le.refill == nil && now.After(le.noLeaseTo) {
				c.refillLocked(le, k, m, cost, now)
			}
			le.mu.Unlock()
			return h, nil
		}
		if wait := le.refill; wait != nil {
			le.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return hold{}, ctx.Err()
			}
		}
		h, err := c.spendLocked(ctx, le, m, cost, now)
		le.mu.Unlock()
		return h, err
	}
}

// peek returns what the user has left as this instance last knew it this month (what
// the database had plus what its lease holds), without a database round trip or waiting
// for one; false when this instance has not spent for the user lately, or is spending
// at the database right now. Refusals before the credit check use it for
// AuthGPTs-Credits-Remaining.
func (c *creditLeases) peek(k leaseKey, now time.Time) (int64, bool) {
	c.mu.Lock()
	le := c.m[k]
	c.mu.Unlock()
	if le == nil || !le.mu.TryLock() { // busy with the database: a refusal does not wait
		return 0, false
	}
	defer le.mu.Unlock()
	if le.released || !le.dbKnown || le.period.Before(store.MonthStart(now)) {
		return 0, false // nothing known, or last month's allowance
	}
	return le.dbLeft + le.left, true
}

// giveBackLocked returns the lease's credits to the database (le.mu is held).
func (c *creditLeases) giveBackLocked(ctx context.Context, le *lease, k leaseKey, now time.Time) error {
	if le.left == 0 {
		return nil
	}
	if err := c.st.GiveBackCredits(ctx, k.app, k.user, le.fromAllowance, le.left-le.fromAllowance, le.period, now); err != nil {
		return err
	}
	le.dbLeft += le.left
	le.left, le.fromAllowance = 0, 0
	return nil
}

// spendLocked takes a lease now (none is running low in the background), or takes this
// call's credits alone near zero. le.mu is held: one user's database spends on this
// instance go one at a time.
func (c *creditLeases) spendLocked(ctx context.Context, le *lease, m store.Metering, cost int64, now time.Time) (hold, error) {
	if cost > 0 && now.After(le.noLeaseTo) {
		t, calls, err := c.take(ctx, m, le.nextSize(now), cost, now)
		switch {
		case err == nil:
			le.calls = calls
			le.addLocked(t)
			return le.takeLocked(cost), nil
		case !errors.Is(err, store.ErrNoCredits):
			return hold{}, err
		}
		le.noLeaseTo = now.Add(leaseBackoff)
	}
	// Near zero: what this instance still holds goes back first, so the database has
	// every credit the user has and the guarded UPDATE decides exactly.
	if err := c.giveBackLocked(ctx, le, leaseKey{m.AppID, m.UserID}, now); err != nil {
		return hold{}, err
	}
	t, err := c.st.TakeCredits(ctx, m, cost, cost, now)
	if err == nil || errors.Is(err, store.ErrNoCredits) {
		le.dbLeft, le.dbKnown = t.Remaining(), true
	}
	if err != nil {
		return hold{remaining: t.Remaining()}, err
	}
	le.period = t.Period
	return hold{fromAllowance: t.FromAllowance, fromBalance: t.FromBalance, period: t.Period, remaining: t.Remaining()}, nil
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

// take leases calls×cost credits, or leaseCalls×cost when the credits are too few for
// that many (store.ErrNoCredits: near zero); it returns what it took and the size it
// took it at.
func (c *creditLeases) take(ctx context.Context, m store.Metering, calls, cost int64, now time.Time) (store.Take, int64, error) {
	for {
		size := cost * calls
		t, err := c.st.TakeCredits(ctx, m, size, size*leaseReserve, now)
		if !errors.Is(err, store.ErrNoCredits) || calls <= leaseCalls {
			return t, calls, err
		}
		calls = leaseCalls
	}
}

// refillLocked starts taking the next lease in the background (le.mu is held).
func (c *creditLeases) refillLocked(le *lease, k leaseKey, m store.Metering, cost int64, now time.Time) {
	done := make(chan struct{})
	le.refill = done
	calls := le.nextSize(now)
	c.refills.Add(1)
	go func() {
		defer c.refills.Done()
		ctx, cancel := context.WithTimeout(context.Background(), leaseTimeout)
		defer cancel()
		t, calls, err := c.take(ctx, m, calls, cost, now)
		le.mu.Lock()
		var back store.Take
		switch {
		case err != nil:
			// Refused (near zero) or failed: calls spend one by one for a while.
			le.noLeaseTo = now.Add(leaseBackoff)
			if errors.Is(err, store.ErrNoCredits) {
				le.dbLeft, le.dbKnown = t.Remaining(), true
			}
		case le.released || (le.left > 0 && !t.Period.Equal(le.period)):
			back = t // the lease was returned meanwhile (or is of another month): these go back too
		default:
			le.addLocked(t)
			le.calls = calls
		}
		le.refill = nil
		close(done)
		le.mu.Unlock()
		if back.Total() > 0 {
			_ = c.st.GiveBackCredits(ctx, k.app, k.user, back.FromAllowance, back.FromBalance, back.Period, now)
		}
	}()
}

// refund gives back amount credits of a call's hold, the balance part first: to the
// lease when there is one of the same month (it was charged from it or will be spent
// from it next), else to the database.
func (c *creditLeases) refund(ctx context.Context, m store.Metering, h hold, amount int64, now time.Time) error {
	rb := min(amount, h.fromBalance)
	ra := amount - rb
	c.mu.Lock()
	le := c.m[leaseKey{m.AppID, m.UserID}]
	c.mu.Unlock()
	if le != nil {
		le.mu.Lock()
		defer le.mu.Unlock()
		if le.left > 0 && !le.released && (ra == 0 || le.period.Equal(h.period)) {
			le.left += amount
			le.fromAllowance += ra
			return nil
		}
	}
	return c.st.GiveBackCredits(ctx, m.AppID, m.UserID, ra, rb, h.period, now)
}

// takeUpTo takes up to amount more credits for a call whose upstream reported a cost
// above its hold: from the lease first, then from the database, never below zero. It
// returns what it took and the overdraft: what could not be taken.
func (c *creditLeases) takeUpTo(ctx context.Context, m store.Metering, amount int64, now time.Time) (hold, int64, error) {
	month := store.MonthStart(now)
	var h hold
	c.mu.Lock()
	le := c.m[leaseKey{m.AppID, m.UserID}]
	c.mu.Unlock()
	if le != nil {
		le.mu.Lock()
		if !le.released && !le.period.Before(month) && le.left > 0 {
			h = le.takeLocked(min(le.left, amount))
		}
		le.mu.Unlock()
	}
	rest := amount - h.total()
	if rest == 0 {
		return h, 0, nil
	}
	t, err := c.st.TakeCreditsUpTo(ctx, m, rest, now)
	if err != nil {
		return h, 0, err
	}
	h.fromAllowance += t.FromAllowance
	h.fromBalance += t.FromBalance
	h.period = t.Period
	return h, rest - t.Total(), nil
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
		if err := c.giveBackLocked(ctx, le, k, now); err != nil {
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

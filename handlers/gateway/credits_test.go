package gateway

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// A busy user's leases grow (few database round trips however fast they call), a
// balance too small for a big lease still gets every credit, and after the leases go
// back the balances are exact.
func TestCreditLeases_SizedToTheUsersPaceAndExact(t *testing.T) {
	st := storetest.NewDB(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	owner, err := st.EnsureUser(ctx, "lease-owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := st.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "Leases",
		Client: store.NewClient{ID: "lease-client", Name: "c", Kind: store.ClientKindPublic}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	busy, _ := st.EnsureUser(ctx, "lease-busy@example.com")
	poor, _ := st.EnsureUser(ctx, "lease-poor@example.com")
	c := newCreditLeases(st)
	size := func(user string) int64 {
		c.mu.Lock()
		le := c.m[leaseKey{app.ID, user}]
		c.mu.Unlock()
		le.mu.Lock()
		defer le.mu.Unlock()
		return le.size()
	}

	// 20,000 calls in 200 ms.
	const free, calls = 1_000_000, 20_000
	now := t0
	for i := range calls {
		if i%100 == 0 {
			now = now.Add(time.Millisecond)
		}
		if _, err := c.spend(ctx, store.Metering{AppID: app.ID, UserID: busy.ID, Free: free}, 1, now); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if got := size(busy.ID); got != leaseMaxCalls {
		t.Errorf("after 20,000 calls in 200 ms the lease is %d calls, want the largest, %d", got, leaseMaxCalls)
	}
	// 300 credits: a lease of 64 fits (4 leases' reserve), bigger ones do not; every
	// credit is spent and the 301st call is refused.
	for i := range 300 {
		if _, err := c.spend(ctx, store.Metering{AppID: app.ID, UserID: poor.ID, Free: 300}, 1, t0); err != nil {
			t.Fatalf("poor call %d: %v", i, err)
		}
	}
	if h, err := c.spend(ctx, store.Metering{AppID: app.ID, UserID: poor.ID, Free: 300}, 1, t0); !errors.Is(err, store.ErrNoCredits) || h.remaining != 0 {
		t.Errorf("call 301 = %d, %v; want ErrNoCredits with 0 left", h.remaining, err)
	}

	if err := c.release(ctx, time.Time{}, now); err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		id                     string
		wantBalance, wantSpent int64
	}{{busy.ID, free - calls, calls}, {poor.ID, 0, 300}} {
		b, err := st.CreditBalance(ctx, app.ID, u.id)
		if err != nil || b.Balance != u.wantBalance || b.Spent != u.wantSpent {
			t.Errorf("balance %d spent %d (%v), want %d and %d", b.Balance, b.Spent, err, u.wantBalance, u.wantSpent)
		}
	}
}

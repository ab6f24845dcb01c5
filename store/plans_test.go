package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
)

// The allowance resets lazily on the first call of a month (no job), is spent before
// the granted balance, and given-back allowance credits do not outlive their month.
func TestTakeCredits_AllowanceFirstAndMonthlyReset(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	user, err := f.s.EnsureUser(ctx, "plan-user@example.com")
	if err != nil {
		t.Fatal(err)
	}
	m := store.Metering{AppID: f.app.ID, UserID: user.ID, Free: 20, Allowance: 100}
	nov := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)

	take := func(at time.Time, amount int64) store.Take {
		t.Helper()
		tk, err := f.s.TakeCredits(ctx, m, amount, amount, at)
		if err != nil {
			t.Fatalf("take %d at %s: %v", amount, at, err)
		}
		return tk
	}
	tk := take(nov, 90)
	if tk.FromAllowance != 90 || tk.FromBalance != 0 || tk.AllowanceLeft != 10 || tk.BalanceLeft != 20 {
		t.Fatalf("first take = %+v", tk)
	}
	tk = take(nov, 15) // 10 from the allowance, 5 from the free credits
	if tk.FromAllowance != 10 || tk.FromBalance != 5 || tk.AllowanceLeft != 0 || tk.BalanceLeft != 15 {
		t.Fatalf("second take = %+v", tk)
	}
	if _, err := f.s.TakeCredits(ctx, m, 16, 16, nov); !errors.Is(err, store.ErrNoCredits) {
		t.Fatalf("over the balance: %v", err)
	}
	// Given back in November, allowance credits count again in November.
	if err := f.s.GiveBackCredits(ctx, m.AppID, m.UserID, 4, 0, nov, nov); err != nil {
		t.Fatal(err)
	}
	// December: the allowance is whole again without anything touching the row before.
	dec := nov.Add(2 * time.Hour)
	tk = take(dec, 30)
	if tk.FromAllowance != 30 || tk.AllowanceLeft != 70 || tk.BalanceLeft != 15 || !tk.Period.Equal(store.MonthStart(dec)) {
		t.Fatalf("December take = %+v", tk)
	}
	// November's allowance credits given back in December are dropped; balance credits are not.
	if err := f.s.GiveBackCredits(ctx, m.AppID, m.UserID, 4, 2, nov, dec); err != nil {
		t.Fatal(err)
	}
	b, err := f.s.CreditBalance(ctx, m.AppID, m.UserID)
	if err != nil || b.AllowanceLeft != 70 || b.Balance != 17 {
		t.Fatalf("balance = %+v, %v", b, err)
	}
	// Up-to takes stop at zero and record the rest as overdraft.
	up, err := f.s.TakeCreditsUpTo(ctx, m, 100, dec)
	if err != nil || up.FromAllowance != 70 || up.FromBalance != 17 || up.Remaining() != 0 {
		t.Fatalf("up-to take = %+v, %v", up, err)
	}
	b, _ = f.s.CreditBalance(ctx, m.AppID, m.UserID)
	if b.Balance != 0 || b.AllowanceLeft != 0 || b.Overdraft != 13 {
		t.Fatalf("after overdraft: %+v", b)
	}
	if got := store.NextReset(dec); !got.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("NextReset = %s", got)
	}
}

func TestPlan_DefaultAndOwnerScoped(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	p, err := f.s.PlanByApp(ctx, f.app.ID)
	if err != nil || p.MonthlyAllowance != 0 || p.TopUpURL != "" {
		t.Fatalf("default plan = %+v, %v", p, err)
	}
	want := store.Plan{MonthlyAllowance: 500, TopUpURL: "https://example.com/buy"}
	if err := f.s.SetPlan(ctx, f.intruder.ID, f.app.ID, want, f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("intruder: %v", err)
	}
	if err := f.s.SetPlan(ctx, f.owner.ID, f.app.ID, want, f.now); err != nil {
		t.Fatal(err)
	}
	if p, _ = f.s.PlanByApp(ctx, f.app.ID); p.MonthlyAllowance != 500 || p.TopUpURL != want.TopUpURL {
		t.Errorf("plan = %+v", p)
	}
}

// The plan statements keep the credits.low and credits.exhausted alerts of webhooks:
// counted on allowance plus balance, once per crossing.
func TestTakeCredits_SendsCreditAlerts(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	user, _ := f.s.EnsureUser(ctx, "alerts-user@example.com")
	if _, err := f.s.DB().Exec(`INSERT INTO webhook_settings (app_id, credits_low_threshold) VALUES ($1, 50)`, f.app.ID); err != nil {
		t.Fatal(err)
	}
	m := store.Metering{AppID: f.app.ID, UserID: user.ID, Free: 40, Allowance: 30}
	alerts := func() string {
		var kinds []string
		if err := f.s.DB().Select(&kinds, `SELECT kind FROM credit_alerts WHERE user_id = $1 ORDER BY kind`, user.ID); err != nil {
			t.Fatal(err)
		}
		return strings.Join(kinds, ",")
	}
	if _, err := f.s.TakeCredits(ctx, m, 10, 10, f.now); err != nil || alerts() != "" { // 60 left: above 50
		t.Fatalf("take: %v, alerts %q", err, alerts())
	}
	if _, err := f.s.TakeCredits(ctx, m, 15, 15, f.now); err != nil || alerts() != "credits.low" { // 45 left
		t.Fatalf("take: %v, alerts %q", err, alerts())
	}
	if _, err := f.s.TakeCreditsUpTo(ctx, m, 100, f.now); err != nil || alerts() != "credits.exhausted,credits.low" {
		t.Fatalf("up-to take: %v, alerts %q", err, alerts())
	}
}

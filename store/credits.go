package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

const (
	creditColumns = `app_id, user_id, balance, spent, created_at, updated_at`

	// One guarded statement: the row lock serialises concurrent spends and PostgreSQL
	// re-checks "balance >= $3" on the locked row, so the balance is exact and never
	// negative however many calls race.
	//
	// The statement's own (implicit) transaction commits with synchronous_commit off: a
	// spend is on every gateway call, and waiting for the WAL flush of each one would
	// cap the gateway at a few thousand calls a second on one hot row. Atomicity and
	// exactness are unchanged; only a PostgreSQL crash can lose the last fraction of a
	// second of spends (those calls are then free, never charged twice).
	//
	// The same statement sends the credits.low and credits.exhausted webhooks when this
	// spend crosses the app's threshold or leaves less than one call's price
	// (creditAlertsCTE in webhooks.go).
	qSpendCredits = `
		WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
		s AS (
		UPDATE credit_balances SET balance = balance - $3, spent = spent + $3, updated_at = $4
		 WHERE app_id = $1 AND user_id = $2 AND balance >= $3 AND (SELECT v FROM async) = 'off'
		RETURNING app_id, user_id, balance)` + creditAlertsSpend
	// A user's first metered call opens the balance with the app's free credits.
	qOpenCreditBalance = `
		INSERT INTO credit_balances (app_id, user_id, balance, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (app_id, user_id) DO NOTHING`
	// A lease takes a block of credits at once, only while the balance stays well above
	// it (see SpendCredits for the exact path used near zero).
	// A lease can cross the credits.low threshold (never exhaust: it leaves three leases).
	qLeaseCredits = `
		WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
		s AS (
		UPDATE credit_balances SET balance = balance - $3, spent = spent + $3, updated_at = $4
		 WHERE app_id = $1 AND user_id = $2 AND balance >= $5 AND (SELECT v FROM async) = 'off'
		RETURNING app_id, user_id, balance)` + creditAlertsLease
	qRefundCredits = `
		UPDATE credit_balances SET balance = balance + $3, spent = GREATEST(spent - $3, 0), updated_at = $4
		 WHERE app_id = $1 AND user_id = $2`
	qCreditBalance    = `SELECT ` + creditColumns + ` FROM credit_balances WHERE app_id = $1 AND user_id = $2`
	qSetCreditBalance = `
		INSERT INTO credit_balances (app_id, user_id, balance, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (app_id, user_id) DO UPDATE SET balance = EXCLUDED.balance, updated_at = EXCLUDED.updated_at
		RETURNING ` + creditColumns
)

// ErrNoCredits is returned by SpendCredits when the balance is below the cost.
var ErrNoCredits = errors.New("store: not enough credits")

// CreditBalance is a user's credits for one app; Spent counts credits spent (net of refunds).
type CreditBalance struct {
	AppID     string    `db:"app_id"`
	UserID    string    `db:"user_id"`
	Balance   int64     `db:"balance"`
	Spent     int64     `db:"spent"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

// SpendCredits takes cost credits from the (app, user) balance and returns what is left.
// The balance is opened with free credits on first use. When fewer than cost credits
// remain nothing is taken and the error is ErrNoCredits, with the current balance.
// One round trip once the balance exists.
func (s *Store) SpendCredits(ctx context.Context, appID, userID string, cost, free int64, now time.Time) (int64, error) {
	var left int64
	err := s.getContext(ctx, &left, qSpendCredits, appID, userID, cost, now)
	if err == nil {
		return left, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, wrap("spend credits", err)
	}
	// No row yet, or not enough credits: open the balance (a no-op when it exists) and
	// try once more.
	if _, err := s.q.ExecContext(ctx, qOpenCreditBalance, appID, userID, free, now); err != nil {
		return 0, wrap("open credit balance", err)
	}
	err = s.getContext(ctx, &left, qSpendCredits, appID, userID, cost, now)
	if err == nil {
		return left, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, wrap("spend credits", err)
	}
	b, err := s.CreditBalance(ctx, appID, userID)
	if err != nil {
		return 0, err
	}
	return b.Balance, ErrNoCredits
}

// LeaseCredits takes size credits from the (app, user) balance for an instance to spend
// in memory, but only when at least minBalance (>= size) credits are there; otherwise it
// takes nothing and returns 0. The balance is opened with free credits on first use.
// Unspent credits go back with RefundCredits.
func (s *Store) LeaseCredits(ctx context.Context, appID, userID string, size, minBalance, free int64, now time.Time) (int64, error) {
	var left int64
	err := s.getContext(ctx, &left, qLeaseCredits, appID, userID, size, now, minBalance)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := s.q.ExecContext(ctx, qOpenCreditBalance, appID, userID, free, now); err != nil {
			return 0, wrap("open credit balance", err)
		}
		err = s.getContext(ctx, &left, qLeaseCredits, appID, userID, size, now, minBalance)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("lease credits", err)
	}
	return size, nil
}

// RefundCredits gives back credits taken by SpendCredits for a call that failed.
func (s *Store) RefundCredits(ctx context.Context, appID, userID string, amount int64, now time.Time) error {
	_, err := s.q.ExecContext(ctx, qRefundCredits, appID, userID, amount, now)
	return wrap("refund credits", err)
}

// CreditBalance returns the (app, user) balance; ErrNotFound before the first metered call.
func (s *Store) CreditBalance(ctx context.Context, appID, userID string) (CreditBalance, error) {
	var b CreditBalance
	err := s.getContext(ctx, &b, qCreditBalance, appID, userID)
	return b, wrap("credit balance", err)
}

// SetCreditBalance sets the (app, user) balance, creating it when missing.
func (s *Store) SetCreditBalance(ctx context.Context, appID, userID string, balance int64, now time.Time) (CreditBalance, error) {
	var b CreditBalance
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.getContext(ctx, &b, qSetCreditBalance, appID, userID, balance, now); err != nil {
			return err
		}
		return tx.resetCreditAlerts(ctx, appID, userID)
	})
	return b, wrap("set credit balance", err)
}

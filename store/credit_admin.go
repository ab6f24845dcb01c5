package store

import (
	"context"
	"encoding/json"
	"time"
)

// Developers' changes to their users' credit balances. Each runs in one transaction with
// its audit entry.

const (
	qAddCredits = `
		INSERT INTO credit_balances (app_id, user_id, balance, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (app_id, user_id) DO UPDATE SET balance = credit_balances.balance + EXCLUDED.balance,
		       updated_at = EXCLUDED.updated_at
		RETURNING ` + creditColumns
	qResetAllCredits = `UPDATE credit_balances SET balance = $2, updated_at = $3 WHERE app_id = $1`
	qRecentSpend     = `
		SELECT coalesce(sum(credits), 0) FROM usage_hourly WHERE app_id = $1 AND user_id = $2 AND hour >= $3`
)

// CreditChange is a developer's change to one user's balance.
type CreditChange struct {
	AppID  string
	UserID string
	Set    bool  // true: the balance becomes Amount; false: Amount is added
	Amount int64 // >= 0
	Reason string
}

// ChangeCredits applies c and audits it; the balance row is created when missing.
func (s *Store) ChangeCredits(ctx context.Context, c CreditChange, actor AuditEntry, now time.Time) (CreditBalance, error) {
	var b CreditBalance
	err := s.InTx(ctx, func(tx *Tx) error {
		q, action := qAddCredits, "credits.top_up"
		if c.Set {
			q, action = qSetCreditBalance, "credits.set"
		}
		if err := tx.getContext(ctx, &b, q, c.AppID, c.UserID, c.Amount, now); err != nil {
			return err
		}
		if err := tx.resetCreditAlerts(ctx, c.AppID, c.UserID); err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]any{"app_id": c.AppID, "amount": c.Amount, "balance": b.Balance, "reason": c.Reason})
		actor.Action, actor.TargetType, actor.TargetID, actor.Details, actor.At = action, "user", c.UserID, details, now
		return tx.Audit(ctx, actor)
	})
	return b, wrap("change credits", err)
}

// ResetAllCredits sets every existing balance of the app to amount and audits it,
// returning how many balances changed.
func (s *Store) ResetAllCredits(ctx context.Context, appID string, amount int64, reason string, actor AuditEntry, now time.Time) (int64, error) {
	var n int64
	err := s.InTx(ctx, func(tx *Tx) error {
		res, err := tx.q.ExecContext(ctx, qResetAllCredits, appID, amount, now)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		if err := tx.resetCreditAlerts(ctx, appID, ""); err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]any{"amount": amount, "balances": n, "reason": reason})
		actor.Action, actor.TargetType, actor.TargetID, actor.Details, actor.At = "credits.reset_all", "app", appID, details, now
		return tx.Audit(ctx, actor)
	})
	return n, wrap("reset all credits", err)
}

// RecentSpend sums the credits a user spent in an app since since (from the roll-ups).
func (s *Store) RecentSpend(ctx context.Context, appID, userID string, since time.Time) (int64, error) {
	var n int64
	err := s.getContext(ctx, &n, qRecentSpend, appID, userID, since)
	return n, wrap("recent spend", err)
}

package store

import (
	"context"
	"time"

	"github.com/lib/pq"
)

const (
	qConnectedApps = `
		SELECT g.id AS grant_id, g.user_id, g.scopes, g.created_at, g.last_used_at,
		       a.id AS app_id, a.name AS app_name, a.slug AS app_slug, a.metering_enabled,
		       c.id AS client_id, c.name AS client_name, u.email AS developer_email,
		       coalesce((SELECT sum(d.calls) FROM usage_user_daily d
		                  WHERE d.app_id = g.app_id AND d.user_id = g.user_id AND d.day >= $2), 0) AS calls_this_month,
		       cb.balance + CASE WHEN cb.period >= $2::date THEN cb.allowance_left
		                         ELSE coalesce(p.monthly_allowance, 0) END AS balance
		  FROM grants g
		  JOIN apps a ON a.id = g.app_id
		  JOIN clients c ON c.id = g.client_id
		  JOIN users u ON u.id = a.owner_id
		  LEFT JOIN credit_balances cb ON cb.app_id = g.app_id AND cb.user_id = g.user_id
		  LEFT JOIN app_plans p ON p.app_id = g.app_id
		 WHERE g.user_id = ANY($1::uuid[]) AND g.revoked_at IS NULL
		 ORDER BY coalesce(g.last_used_at, g.created_at) DESC`
	qLiveGrantIDsOfUser = `SELECT id FROM grants WHERE user_id = $1 AND revoked_at IS NULL`
	// Taken first: a usage batch being written for this user (qLockLiveUsers) commits
	// before the deletion goes on, and one that starts later sees the user gone.
	qLockUserForDelete = `SELECT id FROM users WHERE id = $1 FOR UPDATE`
	// Personal data leaves the audit log with the account; the entries stay for the record.
	qAnonymizeAudit = `UPDATE audit_log SET actor_email = '', ip = '' WHERE actor_id = $1`
	qDeleteUser     = `DELETE FROM users WHERE id = $1`
	qDeleteOTPOf    = `DELETE FROM otps WHERE email = $1`
	qDeleteSendsOf  = `DELETE FROM otp_sends WHERE email = $1`
)

// ConnectedApp is one live grant as the end user sees it.
type ConnectedApp struct {
	GrantID        string         `db:"grant_id"`
	UserID         string         `db:"user_id"` // the identity holding the grant
	Scopes         pq.StringArray `db:"scopes"`
	CreatedAt      time.Time      `db:"created_at"`
	LastUsedAt     *time.Time     `db:"last_used_at"`
	AppID          string         `db:"app_id"`
	AppName        string         `db:"app_name"`
	AppSlug        string         `db:"app_slug"`
	ClientID       string         `db:"client_id"`
	ClientName     string         `db:"client_name"`
	DeveloperEmail string         `db:"developer_email"`
	Metering       bool           `db:"metering_enabled"`
	CallsThisMonth int64          `db:"calls_this_month"` // from the daily roll-up
	Balance        *int64         `db:"balance"`          // credits left with this month's allowance; nil before the first metered call
}

// ConnectedApps lists the live grants of the users (one person's linked identities),
// most recently used first, with the calls made since monthStart (a UTC midnight) and
// the credits left.
func (s *Store) ConnectedApps(ctx context.Context, userIDs []string, monthStart time.Time) ([]ConnectedApp, error) {
	var out []ConnectedApp
	err := s.selectContext(ctx, &out, qConnectedApps, pq.Array(userIDs), monthStart.Format("2006-01-02"))
	return out, wrap("connected apps", err)
}

// DeleteUser removes an account and everything personal hanging off it (sessions,
// grants and their tokens, codes, balances, the apps the user owns) in one transaction.
// Token caches everywhere are told first, in the same transaction, so access tokens stop
// working when it commits. Audit entries stay, without the email and IP.
func (s *Store) DeleteUser(ctx context.Context, u User, now time.Time) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		var locked string
		if err := tx.getContext(ctx, &locked, qLockUserForDelete, u.ID); err != nil {
			return err
		}
		var grantIDs []string
		if err := tx.selectContext(ctx, &grantIDs, qLiveGrantIDsOfUser, u.ID); err != nil {
			return err
		}
		for _, id := range grantIDs {
			if _, err := tx.q.ExecContext(ctx, qNotifyRevocation, "grant:"+id); err != nil {
				return err
			}
		}
		if _, err := tx.q.ExecContext(ctx, qNotifyRevocation, "user:"+u.ID); err != nil {
			return err
		}
		// Tokens at other developers' providers are revoked there after the commit.
		if err := tx.queueRevocationsOfUser(ctx, u.ID, now); err != nil {
			return err
		}
		// The user.deleted webhook, before the grants and balances it looks at go.
		var emitted int
		if err := tx.getContext(ctx, &emitted, qEmitUserDeleted, u.ID, now); err != nil {
			return err
		}
		if _, err := tx.q.ExecContext(ctx, qAnonymizeAudit, u.ID); err != nil {
			return err
		}
		// Usage stays, without the user, so developers' totals stay right.
		if err := tx.AnonymizeUsage(ctx, u.ID); err != nil {
			return err
		}
		for _, q := range []string{qDeleteOTPOf, qDeleteSendsOf} {
			if _, err := tx.q.ExecContext(ctx, q, u.Email); err != nil {
				return err
			}
		}
		// The apps the user owns go with the account, their webhook deliveries with them.
		if err := tx.lockWebhookDeliveries(ctx, qLockDeliveriesOfOwner, u.ID); err != nil {
			return err
		}
		return tx.execOne(ctx, "delete user", qDeleteUser, u.ID)
	})
	return wrap("delete user", err)
}

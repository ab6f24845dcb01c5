package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Plans: an app's monthly allowance per user and its top-up URL, and the credit
// statements that spend the allowance before the granted or purchased balance.
//
// The allowance is kept with the balance (credit_balances.allowance_left for the month
// starting on credit_balances.period). Every spending statement reads the effective
// allowance as "allowance_left when the row's period is this month, else the plan's full
// allowance" and writes period = this month: the reset on the 1st happens lazily, on the
// user's first call of the month, in the same guarded UPDATE, and no job touches every
// row. Like SpendCredits, each statement locks the one row, so concurrent calls on every
// instance stay exact.
const (
	qPlanByApp = `SELECT app_id, monthly_allowance, top_up_url FROM app_plans WHERE app_id = $1`
	qSetPlan   = `
		INSERT INTO app_plans (app_id, monthly_allowance, top_up_url, updated_at)
		SELECT a.id, $3, $4, $5 FROM apps a WHERE a.id = $1 AND a.owner_id = $2
		ON CONFLICT (app_id) DO UPDATE SET monthly_allowance = EXCLUDED.monthly_allowance,
		       top_up_url = EXCLUDED.top_up_url, updated_at = EXCLUDED.updated_at`

	// $1 app, $2 user, $3 amount, $4 now, $5 this month (date), $6 the plan's allowance.
	planCur = `
		WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
		cur AS (
			SELECT app_id, user_id, balance AS bal,
			       CASE WHEN period >= $5::date THEN allowance_left ELSE $6::bigint END AS al
			  FROM credit_balances WHERE app_id = $1 AND user_id = $2 FOR UPDATE)`
	// Take exactly $3 (allowance first) when at least $7 are there; nothing otherwise.
	// Named s and returning app_id, user_id and balance (all that is left) so the
	// credits.low and credits.exhausted webhooks follow it (creditAlerts*, webhooks.go).
	qTakeCreditsS = planCur + `,
		s AS (
		UPDATE credit_balances cb
		   SET allowance_left = cur.al - LEAST(cur.al, $3),
		       balance = cur.bal - ($3 - LEAST(cur.al, $3)),
		       period = GREATEST(cb.period, $5::date), spent = cb.spent + $3, updated_at = $4
		  FROM cur
		 WHERE cb.app_id = cur.app_id AND cb.user_id = cur.user_id AND cur.al + cur.bal >= $7
		   AND (SELECT v FROM async) = 'off'
		RETURNING cb.app_id, cb.user_id, cb.allowance_left + cb.balance AS balance, LEAST(cur.al, $3) AS from_allowance,
		          $3 - LEAST(cur.al, $3) AS from_balance, cb.balance AS balance_left, cb.allowance_left AS allowance_left,
		          cb.period AS period)`

	// Take up to $3 (allowance first), as much as there is; what is missing is overdraft.
	qTakeCreditsUpToS = planCur + `,
		s AS (
		UPDATE credit_balances cb
		   SET allowance_left = cur.al - LEAST(cur.al, $3),
		       balance = cur.bal - LEAST(cur.bal, $3 - LEAST(cur.al, $3)),
		       overdraft = cb.overdraft + ($3 - LEAST(cur.al, $3) - LEAST(cur.bal, $3 - LEAST(cur.al, $3))),
		       period = GREATEST(cb.period, $5::date),
		       spent = cb.spent + LEAST(cur.al, $3) + LEAST(cur.bal, $3 - LEAST(cur.al, $3)), updated_at = $4
		  FROM cur
		 WHERE cb.app_id = cur.app_id AND cb.user_id = cur.user_id AND (SELECT v FROM async) = 'off'
		RETURNING cb.app_id, cb.user_id, cb.allowance_left + cb.balance AS balance, LEAST(cur.al, $3) AS from_allowance,
		          LEAST(cur.bal, $3 - LEAST(cur.al, $3)) AS from_balance, cb.balance AS balance_left,
		          cb.allowance_left AS allowance_left, cb.period AS period)`

	// A user's first metered call opens the balance with the free credits and this
	// month's allowance.
	qOpenPlanBalance = `
		INSERT INTO credit_balances (app_id, user_id, balance, allowance_left, period, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5::date, $6, $6)
		ON CONFLICT (app_id, user_id) DO NOTHING`

	// Give back allowance credits of month $5 (only while the row is still in that
	// month: an allowance does not outlive its month) and balance credits.
	qGiveBackCredits = `
		WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v)
		UPDATE credit_balances
		   SET allowance_left = allowance_left + CASE WHEN period = $5::date THEN $3::bigint ELSE 0 END,
		       balance = balance + $6, spent = GREATEST(spent - $3 - $6, 0), updated_at = $4
		 WHERE app_id = $1 AND user_id = $2 AND (SELECT v FROM async) = 'off'`
	qAddOverdraft = `UPDATE credit_balances SET overdraft = overdraft + $3, updated_at = $4 WHERE app_id = $1 AND user_id = $2`
)

// The spending statements with the credit alerts after them: one call's credits
// (credits.exhausted when less than that call's price is left), a lease (credits.low
// only: a lease always leaves several), and a settlement's extra (exhausted at zero).
var (
	takeSelect          = `SELECT s.from_allowance, s.from_balance, s.balance_left, s.allowance_left, s.period FROM s, emitted`
	qTakeCredits        = qTakeCreditsS + alertsThen(creditAlertsSpend)
	qLeaseTake          = qTakeCreditsS + alertsThen(creditAlertsLease)
	qTakeCreditsUpTo    = qTakeCreditsUpToS + alertsThen(creditAlertsHead+`1::bigint`+creditAlertsTail)
	alertsFinalSelect   = `SELECT s.balance FROM s, emitted`
	errAlertsNotChained = errors.New("store: credit alerts do not end as expected")
)

// alertsThen replaces the final SELECT of a credit-alerts tail with the take's columns.
func alertsThen(tail string) string {
	if !strings.HasSuffix(tail, alertsFinalSelect) {
		panic(errAlertsNotChained)
	}
	return strings.TrimSuffix(tail, alertsFinalSelect) + takeSelect
}

// Plan is an app's plan: MonthlyAllowance credits per user each month (0: none), spent
// before the user's granted or purchased credits, and the page where users buy more.
type Plan struct {
	AppID            string `db:"app_id"`
	MonthlyAllowance int64  `db:"monthly_allowance"`
	TopUpURL         string `db:"top_up_url"`
}

// MaxMonthlyAllowance bounds a plan's allowance.
const MaxMonthlyAllowance = 1_000_000_000_000

// PlanByApp returns the app's plan; an app without one has the zero plan.
func (s *Store) PlanByApp(ctx context.Context, appID string) (Plan, error) {
	var p Plan
	err := s.getContext(ctx, &p, qPlanByApp, appID)
	if errors.Is(err, sql.ErrNoRows) {
		return Plan{AppID: appID}, nil
	}
	return p, wrap("plan by app", err)
}

// SetPlan saves the plan of the owner's app (ErrNotFound for another developer's app);
// the gateways hear of it at once (ChannelAppChanged).
func (s *Store) SetPlan(ctx context.Context, ownerID, appID string, p Plan, now time.Time) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "set plan", qSetPlan, appID, ownerID, p.MonthlyAllowance, p.TopUpURL, now); err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelAppChanged, appID)
	})
	return wrap("set plan", err)
}

// MonthStart is the first instant of t's month in UTC: the period of an allowance.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// NextReset is when the allowance of t's month is renewed: the first of the next month, UTC.
func NextReset(t time.Time) time.Time { return MonthStart(t).AddDate(0, 1, 0) }

// Metering is what a spending statement needs to know of an app and a user.
type Metering struct {
	AppID, UserID string
	Free          int64 // free credits a new balance opens with
	Allowance     int64 // the plan's monthly allowance
}

// Take is what a spending statement took and what it left.
type Take struct {
	FromAllowance int64     `db:"from_allowance"`
	FromBalance   int64     `db:"from_balance"`
	BalanceLeft   int64     `db:"balance_left"`   // granted or purchased credits left
	AllowanceLeft int64     `db:"allowance_left"` // of this month's allowance
	Period        time.Time `db:"period"`         // the month the allowance is of
}

// Total is what the take took.
func (t Take) Total() int64 { return t.FromAllowance + t.FromBalance }

// Remaining is the allowance and balance left.
func (t Take) Remaining() int64 { return t.AllowanceLeft + t.BalanceLeft }

// TakeCredits takes exactly amount credits, the month's allowance first, when at least
// min (>= amount) credits are there in all; otherwise it takes nothing and answers
// ErrNoCredits with what is left. The balance is opened on first use. One round trip
// once the balance exists.
func (s *Store) TakeCredits(ctx context.Context, m Metering, amount, min int64, now time.Time) (Take, error) {
	month := MonthStart(now)
	t, err := s.takeCredits(ctx, m, amount, min, now, month)
	if !errors.Is(err, sql.ErrNoRows) {
		return t, wrap("take credits", err)
	}
	if _, err := s.q.ExecContext(ctx, qOpenPlanBalance, m.AppID, m.UserID, m.Free, m.Allowance, month, now); err != nil {
		return Take{}, wrap("open credit balance", err)
	}
	t, err = s.takeCredits(ctx, m, amount, min, now, month)
	if !errors.Is(err, sql.ErrNoRows) {
		return t, wrap("take credits", err)
	}
	b, err := s.CreditBalance(ctx, m.AppID, m.UserID)
	if err != nil {
		return Take{}, err
	}
	left := b.AllowanceLeft
	if b.Period.Before(month) {
		left = m.Allowance
	}
	return Take{BalanceLeft: b.Balance, AllowanceLeft: left, Period: month}, ErrNoCredits
}

func (s *Store) takeCredits(ctx context.Context, m Metering, amount, min int64, now, month time.Time) (Take, error) {
	q := qTakeCredits
	if min > amount {
		q = qLeaseTake
	}
	var t Take
	err := s.getContext(ctx, &t, q, m.AppID, m.UserID, amount, now, month, m.Allowance, min)
	return t, err
}

// TakeCreditsUpTo takes up to amount credits (the allowance first) from an existing
// balance, as many as there are: the balance never goes below zero, and what could not
// be taken is added to the balance's overdraft. For settling a call whose upstream
// reported a cost above what was held.
func (s *Store) TakeCreditsUpTo(ctx context.Context, m Metering, amount int64, now time.Time) (Take, error) {
	var t Take
	err := s.getContext(ctx, &t, qTakeCreditsUpTo, m.AppID, m.UserID, amount, now, MonthStart(now), m.Allowance)
	if errors.Is(err, sql.ErrNoRows) {
		return Take{}, ErrNotFound
	}
	return t, wrap("take credits up to", err)
}

// GiveBackCredits returns credits taken earlier: fromAllowance to the allowance of the
// month period (dropped when the balance has moved on to a later month) and
// fromBalance to the balance.
func (s *Store) GiveBackCredits(ctx context.Context, appID, userID string, fromAllowance, fromBalance int64, period, now time.Time) error {
	if fromAllowance == 0 && fromBalance == 0 {
		return nil
	}
	_, err := s.q.ExecContext(ctx, qGiveBackCredits, appID, userID, fromAllowance, now, MonthStart(period), fromBalance)
	return wrap("give back credits", err)
}

// AddOverdraft records credits a call cost that the balance could not pay.
func (s *Store) AddOverdraft(ctx context.Context, appID, userID string, amount int64, now time.Time) error {
	if amount <= 0 {
		return nil
	}
	_, err := s.q.ExecContext(ctx, qAddOverdraft, appID, userID, amount, now)
	return wrap("add overdraft", err)
}

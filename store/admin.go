package store

import (
	"context"
	"encoding/json"
	"time"
)

// Platform-wide reads and the suspension switch for the admin console. Lists use keyset
// pagination (WHERE (created_at, id) < cursor), never OFFSET, so deep pages stay fast.

const (
	qPlatformTotals = `
		SELECT (SELECT count(*) FROM users)                                        AS users,
		       (SELECT count(DISTINCT owner_id) FROM apps)                         AS developers,
		       (SELECT count(*) FROM apps)                                         AS apps,
		       (SELECT count(*) FROM clients)                                      AS clients,
		       (SELECT count(*) FROM users WHERE created_at > $1)                  AS signups_7d,
		       (SELECT count(*) FROM users WHERE last_login_at > $2)               AS active_30d,
		       (SELECT count(*) FROM grants WHERE revoked_at IS NULL)              AS live_grants,
		       (SELECT count(*) FROM refresh_tokens WHERE created_at > $2)         AS user_tokens_30d,
		       (SELECT coalesce(sum(calls), 0) FROM usage_client_hourly WHERE hour > $2) AS gateway_calls_30d,
		       (SELECT coalesce(sum(calls_4xx + calls_5xx), 0) FROM usage_client_hourly WHERE hour > $2) AS gateway_errors_30d`
	qGatewayCallsPerDay = `
		SELECT date_trunc('day', hour, 'UTC') AS day, sum(calls) AS calls, sum(calls_4xx + calls_5xx) AS errors
		  FROM usage_client_hourly WHERE hour >= $1 GROUP BY 1 ORDER BY 1`
	qBusiestApps = `
		SELECT a.slug, a.name, u.email AS owner_email, t.calls, t.errors
		  FROM (SELECT app_id, sum(calls) AS calls, sum(calls_4xx + calls_5xx) AS errors
		          FROM usage_client_hourly WHERE hour >= $1 GROUP BY app_id ORDER BY calls DESC LIMIT $2) t
		  JOIN apps a ON a.id = t.app_id JOIN users u ON u.id = a.owner_id
		 ORDER BY t.calls DESC`
	qSignupsPerDay = `
		SELECT date_trunc('day', created_at) AS day, count(*) AS n FROM users
		 WHERE created_at > $1 GROUP BY 1 ORDER BY 1`

	qAdminUsers = `
		SELECT u.id, u.email, u.issuer, u.subject, u.is_admin, u.suspended_at, u.suspended_reason, u.created_at, u.last_login_at,
		       (SELECT count(*) FROM apps a WHERE a.owner_id = u.id) AS app_count
		  FROM users u
		 WHERE ($1 = '' OR u.email LIKE '%' || $1 || '%')
		   AND ($2 = false OR EXISTS (SELECT 1 FROM apps a WHERE a.owner_id = u.id))
		   AND ($3::timestamptz IS NULL OR (u.created_at, u.id) < ($3, $4::uuid))
		 ORDER BY u.created_at DESC, u.id DESC LIMIT $5`
	qAdminApps = `
		SELECT ` + appColumns + `, u.email AS owner_email,
		       (SELECT count(*) FROM clients c WHERE c.app_id = a.id) AS client_count
		  FROM apps a JOIN users u ON u.id = a.owner_id
		 WHERE ($1 = '' OR a.name ILIKE '%' || $1 || '%' OR a.slug LIKE '%' || $1 || '%' OR u.email LIKE '%' || $1 || '%')
		   AND ($2::timestamptz IS NULL OR (a.created_at, a.id) < ($2, $3::uuid))
		 ORDER BY a.created_at DESC, a.id DESC LIMIT $4`
	qAdminClients = `
		SELECT ` + clientColumns + `, coalesce(a.slug, '') AS app_slug, coalesce(a.name, '') AS app_name,
		       coalesce(u.email, '') AS owner_email
		  FROM clients c LEFT JOIN apps a ON a.id = c.app_id LEFT JOIN users u ON u.id = a.owner_id
		 WHERE ($1 = '' OR c.id LIKE '%' || $1 || '%' OR c.name ILIKE '%' || $1 || '%' OR coalesce(a.slug, '') LIKE '%' || $1 || '%')
		   AND ($2::timestamptz IS NULL OR (c.created_at, c.id) < ($2, $3))
		 ORDER BY c.created_at DESC, c.id DESC LIMIT $4`
	qAuditPage = `
		SELECT id, at, coalesce(actor_id::text, '') AS actor_id, actor_email, action, target_type, target_id, ip, details
		  FROM audit_log
		 WHERE ($1 = '' OR actor_email LIKE '%' || $1 || '%')
		   AND ($2 = '' OR action LIKE $2 || '%')
		   AND ($3 = '' OR target_id = $3 OR target_type = $3)
		   AND ($4::timestamptz IS NULL OR at >= $4)
		   AND ($5::timestamptz IS NULL OR at < $5)
		   AND ($6 = 0 OR id < $6)
		 ORDER BY id DESC LIMIT $7`

	qSuspendUser   = `UPDATE users SET suspended_at = $2, suspended_reason = $3 WHERE id = $1`
	qUnsuspendUser = `UPDATE users SET suspended_at = NULL, suspended_reason = '' WHERE id = $1`
	qSuspendApp    = `UPDATE apps SET suspended_at = $2, suspended_reason = $3, updated_at = $2 WHERE id = $1`
	qUnsuspendApp  = `UPDATE apps SET suspended_at = NULL, suspended_reason = '', updated_at = $2 WHERE id = $1`
	qSuspendClient = `UPDATE clients SET suspended_at = $2, suspended_reason = $3, updated_at = $2 WHERE id = $1`
	qUnsuspendCli  = `UPDATE clients SET suspended_at = NULL, suspended_reason = '', updated_at = $2 WHERE id = $1`
	// Revocation and suspension signals reach every instance's token caches.
	qNotifyRevocation = `SELECT pg_notify('authgpts_revocations', $1)`
)

// PlatformTotals are the admin dashboard's headline numbers.
type PlatformTotals struct {
	Users      int64 `db:"users"`
	Developers int64 `db:"developers"`
	Apps       int64 `db:"apps"`
	Clients    int64 `db:"clients"`
	Signups7d  int64 `db:"signups_7d"`
	Active30d  int64 `db:"active_30d"`
	LiveGrants int64 `db:"live_grants"`
	// Refresh tokens minted (each code exchange and refresh): the database's record of
	// user tokens. client_credentials tokens write nothing; /metrics counts every grant.
	UserTokens30d    int64 `db:"user_tokens_30d"`
	GatewayCalls30d  int64 `db:"gateway_calls_30d"`
	GatewayErrors30d int64 `db:"gateway_errors_30d"`
}

// DayCalls is one day of gateway traffic.
type DayCalls struct {
	Day    time.Time `db:"day"`
	Calls  int64     `db:"calls"`
	Errors int64     `db:"errors"`
}

// GatewayCallsPerDay returns gateway calls and errors per day since since (roll-ups).
func (s *Store) GatewayCallsPerDay(ctx context.Context, since time.Time) ([]DayCalls, error) {
	var out []DayCalls
	err := s.selectContext(ctx, &out, qGatewayCallsPerDay, since)
	return out, wrap("gateway calls per day", err)
}

// BusyApp is one of the apps with the most gateway calls.
type BusyApp struct {
	Slug       string `db:"slug"`
	Name       string `db:"name"`
	OwnerEmail string `db:"owner_email"`
	Calls      int64  `db:"calls"`
	Errors     int64  `db:"errors"`
}

// BusiestApps returns the apps with the most gateway calls since since.
func (s *Store) BusiestApps(ctx context.Context, since time.Time, limit int) ([]BusyApp, error) {
	var out []BusyApp
	err := s.selectContext(ctx, &out, qBusiestApps, since, limit)
	return out, wrap("busiest apps", err)
}

// DayCount is one day of a daily series.
type DayCount struct {
	Day time.Time `db:"day"`
	N   int64     `db:"n"`
}

// PlatformTotals counts users, developers, apps, clients and recent activity.
func (s *Store) PlatformTotals(ctx context.Context, now time.Time) (PlatformTotals, error) {
	var t PlatformTotals
	err := s.getContext(ctx, &t, qPlatformTotals, now.Add(-7*24*time.Hour), now.Add(-30*24*time.Hour))
	return t, wrap("platform totals", err)
}

// SignupsPerDay returns sign-ups per day since since.
func (s *Store) SignupsPerDay(ctx context.Context, since time.Time) ([]DayCount, error) {
	var out []DayCount
	err := s.selectContext(ctx, &out, qSignupsPerDay, since)
	return out, wrap("signups per day", err)
}

// Cursor is a keyset position: the (created_at, id) of the last row of the previous page.
type Cursor struct {
	At *time.Time
	ID string
}

// AdminUser is a user row for the admin lists.
type AdminUser struct {
	User
	AppCount int64 `db:"app_count"`
}

// AdminUsers lists users newest first; developersOnly keeps those who own an app.
func (s *Store) AdminUsers(ctx context.Context, q string, developersOnly bool, after Cursor, limit int) ([]AdminUser, error) {
	var out []AdminUser
	err := s.selectContext(ctx, &out, qAdminUsers, q, developersOnly, after.At, nullableID(after.ID), limit)
	return out, wrap("admin users", err)
}

// AdminApp is an app with its owner for the admin lists.
type AdminApp struct {
	App
	OwnerEmail  string `db:"owner_email"`
	ClientCount int64  `db:"client_count"`
}

// AdminApps lists every app newest first, searchable by name, slug or owner email.
func (s *Store) AdminApps(ctx context.Context, q string, after Cursor, limit int) ([]AdminApp, error) {
	var out []AdminApp
	err := s.selectContext(ctx, &out, qAdminApps, q, after.At, nullableID(after.ID), limit)
	return out, wrap("admin apps", err)
}

// AdminClient is a client with its app and owner for the admin lists.
type AdminClient struct {
	Client
	AppSlug    string `db:"app_slug"`
	AppName    string `db:"app_name"`
	OwnerEmail string `db:"owner_email"`
}

// AdminClients lists every client newest first, searchable by ID, name or app slug.
func (s *Store) AdminClients(ctx context.Context, q string, after Cursor, limit int) ([]AdminClient, error) {
	var out []AdminClient
	err := s.selectContext(ctx, &out, qAdminClients, q, after.At, after.ID, limit)
	return out, wrap("admin clients", err)
}

// AuditFilter narrows the audit log.
type AuditFilter struct {
	Actor    string // substring of the actor's email
	Action   string // prefix, e.g. "client." or "admin.suspend"
	Target   string // a target ID or a target type
	From, To *time.Time
	BeforeID int64 // keyset: entries older than this ID
}

// AuditPage returns entries matching f, newest first.
func (s *Store) AuditPage(ctx context.Context, f AuditFilter, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.selectContext(ctx, &out, qAuditPage, f.Actor, f.Action, f.Target, f.From, f.To, f.BeforeID, limit)
	return out, wrap("audit page", err)
}

// Suspension targets.
const (
	TargetUser   = "user"
	TargetApp    = "app"
	TargetClient = "client"
)

// SetSuspended suspends (reason != "" and suspend) or reinstates a user, app or client,
// audits it and, on suspension, signals every instance to drop cached tokens of the
// target; suspending a user also ends all of their sessions. One transaction.
func (s *Store) SetSuspended(ctx context.Context, targetType, targetID string, suspend bool, reason string, actor AuditEntry, now time.Time) error {
	queries := map[string][2]string{
		TargetUser:   {qSuspendUser, qUnsuspendUser},
		TargetApp:    {qSuspendApp, qUnsuspendApp},
		TargetClient: {qSuspendClient, qUnsuspendCli},
	}
	q, ok := queries[targetType]
	if !ok {
		return ErrNotFound
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		if suspend {
			err = tx.execOne(ctx, "suspend", q[0], targetID, now, reason)
		} else if targetType == TargetUser {
			err = tx.execOne(ctx, "unsuspend", q[1], targetID)
		} else {
			err = tx.execOne(ctx, "unsuspend", q[1], targetID, now)
		}
		if err != nil {
			return err
		}
		action := "admin.unsuspend_" + targetType
		if suspend {
			action = "admin.suspend_" + targetType
			if targetType == TargetUser {
				if err := tx.DeleteUserSessions(ctx, targetID); err != nil {
					return err
				}
			}
			if _, err := tx.q.ExecContext(ctx, qNotifyRevocation, targetType+":"+targetID); err != nil {
				return err
			}
		}
		details, _ := json.Marshal(map[string]string{"reason": reason})
		actor.Action, actor.TargetType, actor.TargetID, actor.Details, actor.At = action, targetType, targetID, details, now
		return tx.Audit(ctx, actor)
	})
	return wrap("set suspended", err)
}

func nullableID(id string) any {
	if id == "" {
		return nil
	}
	return id
}

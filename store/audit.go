package store

import (
	"context"
	"encoding/json"
	"time"
)

const (
	qInsertAudit = `
		INSERT INTO audit_log (at, actor_id, actor_email, action, target_type, target_id, ip, details)
		VALUES ($1, NULLIF($2, '')::uuid, $3, $4, $5, $6, $7, $8)`
	qRecentAudit = `
		SELECT id, at, coalesce(actor_id::text, '') AS actor_id, actor_email, action, target_type, target_id, ip, details
		  FROM audit_log ORDER BY id DESC LIMIT $1`
)

// AuditEntry is one row of the audit log. Details never hold a secret.
type AuditEntry struct {
	ID         int64           `db:"id"`
	At         time.Time       `db:"at"`
	ActorID    string          `db:"actor_id"`
	ActorEmail string          `db:"actor_email"`
	Action     string          `db:"action"`
	TargetType string          `db:"target_type"`
	TargetID   string          `db:"target_id"`
	IP         string          `db:"ip"`
	Details    json.RawMessage `db:"details"`
}

// Audit appends an entry. Call it inside the transaction of the change it records.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	details := e.Details
	if len(details) == 0 {
		details = json.RawMessage(`{}`)
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	_, err := s.q.ExecContext(ctx, qInsertAudit, at.UTC(), e.ActorID, e.ActorEmail, e.Action, e.TargetType, e.TargetID, e.IP, []byte(details))
	return wrap("audit", err)
}

// RecentAudit returns the newest entries first.
func (s *Store) RecentAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := s.selectContext(ctx, &out, qRecentAudit, limit)
	return out, wrap("recent audit", err)
}

package store

import (
	"context"
	"errors"
	"time"
)

const (
	qCreateSession = `
		INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, ip, user_agent, link_from_user_id, link_from_at)
		VALUES ($1, $2, $3, $3, $4, $5, $6, NULLIF($7, '')::uuid, $8)`
	// The join returns the user with the session so a signed-in request costs one query.
	qSessionUser = `
		SELECT ` + prefixedUserColumns + `, s.created_at AS session_started
		  FROM sessions s JOIN users u ON u.id = s.user_id
		 WHERE s.id_hash = $1 AND s.expires_at > $2`
	qDeleteSession      = `DELETE FROM sessions WHERE id_hash = $1`
	qEndSession         = `DELETE FROM sessions WHERE id_hash = $1 RETURNING user_id, link_intent_at`
	qDeleteUserSessions = `DELETE FROM sessions WHERE user_id = $1`
	qDeleteExpiredSess  = `DELETE FROM sessions WHERE expires_at <= $1`
)

// NewSession describes a session row to create; IDHash is the keyed hash of the cookie value.
type NewSession struct {
	IDHash    []byte
	UserID    string
	IP        string
	UserAgent string
	ExpiresAt time.Time
	// LinkFromUserID and LinkFromAt: the identity whose session in this browser this
	// sign-in replaces, when that identity had asked to link another, and when it asked
	// ("" and nil otherwise).
	LinkFromUserID string
	LinkFromAt     *time.Time
}

// CreateSession stores a new signed-in session.
func (s *Store) CreateSession(ctx context.Context, n NewSession, now time.Time) error {
	_, err := s.q.ExecContext(ctx, qCreateSession, n.IDHash, n.UserID, now, n.ExpiresAt, n.IP, n.UserAgent, n.LinkFromUserID, n.LinkFromAt)
	return wrap("create session", err)
}

// SessionUser returns the user of a live session and when the session began, which is
// when the user signed in on this browser (the ID is new at every sign-in), or ErrNotFound.
func (s *Store) SessionUser(ctx context.Context, idHash []byte, now time.Time) (User, time.Time, error) {
	var row struct {
		User
		Started time.Time `db:"session_started"`
	}
	err := s.getContext(ctx, &row, qSessionUser, idHash, now)
	return row.User, row.Started, wrap("session user", err)
}

// DeleteSession ends one session (sign-out). Deleting a missing session is not an error.
func (s *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	_, err := s.q.ExecContext(ctx, qDeleteSession, idHash)
	return wrap("delete session", err)
}

// EndedSession is what a session replaced at sign-in leaves to its successor.
type EndedSession struct {
	UserID       string     `db:"user_id"`
	LinkIntentAt *time.Time `db:"link_intent_at"` // when its identity asked to link another
}

// EndSession deletes a session a new sign-in in the same browser replaces and returns
// what it held; a missing session is a zero EndedSession.
func (s *Store) EndSession(ctx context.Context, idHash []byte) (EndedSession, error) {
	var e EndedSession
	err := wrap("end session", s.getContext(ctx, &e, qEndSession, idHash))
	if errors.Is(err, ErrNotFound) {
		return EndedSession{}, nil
	}
	return e, err
}

// DeleteUserSessions ends every session of a user (sign out everywhere, suspension).
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := s.q.ExecContext(ctx, qDeleteUserSessions, userID)
	return wrap("delete user sessions", err)
}

// DeleteExpiredSessions removes sessions past their expiry.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, qDeleteExpiredSess, now)
	if err != nil {
		return 0, wrap("delete expired sessions", err)
	}
	return res.RowsAffected()
}

package store

import (
	"context"
	"net/mail"
	"strings"
	"time"
)

const (
	userColumns = `id, email, issuer, subject, is_admin, suspended_at, suspended_reason, created_at, last_login_at`
	// prefixedUserColumns are userColumns of a users table aliased u.
	prefixedUserColumns = `u.id, u.email, u.issuer, u.subject, u.is_admin, u.suspended_at, u.suspended_reason, u.created_at, u.last_login_at`

	qUserByID    = `SELECT ` + userColumns + ` FROM users WHERE id = $1`
	qUserByEmail = `SELECT ` + userColumns + ` FROM users WHERE email = $1 AND issuer = ''`
	// Sign-in creates the account on first use (one flow for sign-up and sign-in).
	qUpsertUserAtSignIn = `
		INSERT INTO users (email, is_admin, last_login_at) VALUES ($1, $2, $3)
		ON CONFLICT (email) WHERE issuer = '' DO UPDATE
		   SET last_login_at = EXCLUDED.last_login_at,
		       is_admin = users.is_admin OR EXCLUDED.is_admin
		RETURNING ` + userColumns + `, (xmax = 0) AS created`
	qEnsureUser = `
		INSERT INTO users (email) VALUES ($1)
		ON CONFLICT (email) WHERE issuer = '' DO UPDATE SET email = EXCLUDED.email
		RETURNING ` + userColumns
	qSetAdmin = `UPDATE users SET is_admin = $2 WHERE email = $1 AND issuer = ''`
)

// User is one identity: developer, end user and admin alike. An email-code account has
// Issuer "" and a verified Email; an identity from an upstream provider is the pair
// (Issuer, Subject), with Email set only when the upstream said it was verified.
type User struct {
	ID              string     `db:"id"`
	Email           string     `db:"email"`
	Issuer          string     `db:"issuer"`
	Subject         string     `db:"subject"`
	IsAdmin         bool       `db:"is_admin"`
	SuspendedAt     *time.Time `db:"suspended_at"`
	SuspendedReason string     `db:"suspended_reason"`
	CreatedAt       time.Time  `db:"created_at"`
	LastLoginAt     *time.Time `db:"last_login_at"`
}

// IsFederated reports whether the user signed in through an upstream identity source.
func (u User) IsFederated() bool { return u.Issuer != "" }

// PublicSubject is the subject the user's tokens carry: the upstream subject for an
// identity from an identity source, else the local user ID.
func (u User) PublicSubject() string {
	if u.Issuer != "" {
		return u.Subject
	}
	return u.ID
}

// DisplayName is how pages name the user: the email, or the subject at its issuer.
func (u User) DisplayName() string {
	if u.Email != "" {
		return u.Email
	}
	if u.Issuer != "" {
		return u.Subject + " (" + u.Issuer + ")"
	}
	return u.ID
}

// IsSuspended reports whether an admin suspended the user.
func (u User) IsSuspended() bool { return u.SuspendedAt != nil }

// UserByID returns the user with that ID.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	var u User
	err := s.getContext(ctx, &u, qUserByID, id)
	return u, wrap("user by id", err)
}

// UserByEmail returns the user with that (normalised) email.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	var u User
	err := s.getContext(ctx, &u, qUserByEmail, email)
	return u, wrap("user by email", err)
}

// SignInUser records a verified sign-in, creating the account on first use. admin
// promotes the user (configured admin emails); it never demotes. created tells a
// sign-up from a sign-in.
func (s *Store) SignInUser(ctx context.Context, email string, admin bool, now time.Time) (u User, created bool, err error) {
	var row struct {
		User
		Created bool `db:"created"`
	}
	err = s.getContext(ctx, &row, qUpsertUserAtSignIn, email, admin, now)
	return row.User, row.Created, wrap("sign in user", err)
}

// EnsureUser returns the user with that email, creating it when absent (CLI, fixtures).
func (s *Store) EnsureUser(ctx context.Context, email string) (User, error) {
	var u User
	err := s.getContext(ctx, &u, qEnsureUser, email)
	return u, wrap("ensure user", err)
}

// SetAdmin grants or removes the admin role.
func (s *Store) SetAdmin(ctx context.Context, email string, admin bool) error {
	return s.execOne(ctx, "set admin", qSetAdmin, email, admin)
}

// NormalizeEmail trims and lower-cases an email address and checks that it is one plain
// address (no display name, no list), at most 254 characters. Accounts are keyed by it.
func NormalizeEmail(raw string) (string, bool) {
	email := strings.ToLower(strings.TrimSpace(raw))
	if email == "" || len(email) > 254 || strings.ContainsAny(email, " \t\r\n<>,;\"") {
		return "", false
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return "", false
	}
	at := strings.LastIndexByte(email, '@')
	if at < 1 || !strings.Contains(email[at+1:], ".") || strings.HasSuffix(email, ".") {
		return "", false
	}
	return email, true
}

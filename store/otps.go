package store

import (
	"context"
	"crypto/subtle"
	"time"
)

const (
	qCountOTPSendsByEmail = `SELECT count(*) FROM otp_sends WHERE email = $1 AND sent_at > $2`
	qCountOTPSendsByIP    = `SELECT count(*) FROM otp_sends WHERE ip = $1 AND sent_at > $2`
	qLastOTPSend          = `SELECT coalesce(max(sent_at), 'epoch') FROM otp_sends WHERE email = $1`
	qInsertOTPSend        = `INSERT INTO otp_sends (email, ip, sent_at) VALUES ($1, $2, $3)`
	// A new code replaces the previous one and resets its tries.
	qUpsertOTP = `
		INSERT INTO otps (email, code_hash, attempts, created_at, expires_at) VALUES ($1, $2, 0, $3, $4)
		ON CONFLICT (email) DO UPDATE
		   SET code_hash = EXCLUDED.code_hash, attempts = 0,
		       created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`
	qLockOTP        = `SELECT code_hash, attempts, expires_at FROM otps WHERE email = $1 FOR UPDATE`
	qDeleteOTP      = `DELETE FROM otps WHERE email = $1`
	qFailOTPAttempt = `UPDATE otps SET attempts = attempts + 1 WHERE email = $1`
	qPruneOTPSends  = `DELETE FROM otp_sends WHERE sent_at < $1`
	qPruneOTPs      = `DELETE FROM otps WHERE expires_at < $1`
)

// OTPMaxAttempts is how many wrong codes burn a code.
const OTPMaxAttempts = 5

// OTPSendLimits are the throttles checked before a code is sent.
type OTPSendLimits struct {
	ResendAfter time.Duration // minimum gap between two codes to one email
	Window      time.Duration // window of the two counts below
	PerEmail    int           // codes per email per window
	PerIP       int           // codes per client IP per window
}

// OTPSendVerdict says whether a code may be sent now, and if not, when to retry.
type OTPSendVerdict struct {
	Allowed    bool
	RetryAfter time.Duration
	Reason     string // "resend", "email" or "ip"
}

// ReserveOTPSend checks the throttles and, when they allow it, stores the code hash and
// counts the send, in one transaction so two concurrent requests cannot both pass.
func (s *Store) ReserveOTPSend(ctx context.Context, email, ip string, codeHash []byte, ttl time.Duration, lim OTPSendLimits, now time.Time) (OTPSendVerdict, error) {
	var verdict OTPSendVerdict
	err := s.InTx(ctx, func(tx *Tx) error {
		// Serialise sends per email so the resend gap holds under concurrency.
		if _, err := tx.q.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('otp:' || $1))`, email); err != nil {
			return err
		}
		var last time.Time
		if err := tx.getContext(ctx, &last, qLastOTPSend, email); err != nil {
			return err
		}
		if wait := last.Add(lim.ResendAfter).Sub(now); wait > 0 {
			verdict = OTPSendVerdict{RetryAfter: wait, Reason: "resend"}
			return nil
		}
		since := now.Add(-lim.Window)
		var byEmail, byIP int
		if err := tx.getContext(ctx, &byEmail, qCountOTPSendsByEmail, email, since); err != nil {
			return err
		}
		if byEmail >= lim.PerEmail {
			verdict = OTPSendVerdict{RetryAfter: lim.Window, Reason: "email"}
			return nil
		}
		if err := tx.getContext(ctx, &byIP, qCountOTPSendsByIP, ip, since); err != nil {
			return err
		}
		if byIP >= lim.PerIP {
			verdict = OTPSendVerdict{RetryAfter: lim.Window, Reason: "ip"}
			return nil
		}
		if _, err := tx.q.ExecContext(ctx, qInsertOTPSend, email, ip, now); err != nil {
			return err
		}
		if _, err := tx.q.ExecContext(ctx, qUpsertOTP, email, codeHash, now, now.Add(ttl)); err != nil {
			return err
		}
		verdict = OTPSendVerdict{Allowed: true}
		return nil
	})
	return verdict, wrap("reserve otp send", err)
}

// CancelOTP forgets the live code of an email (used when the mail could not be sent).
func (s *Store) CancelOTP(ctx context.Context, email string) error {
	_, err := s.q.ExecContext(ctx, qDeleteOTP, email)
	return wrap("cancel otp", err)
}

// CheckOTP compares codeHash with the live code of email in constant time. A match
// consumes the code; a miss counts a try, and the fifth miss burns the code. Expired or
// missing codes never match.
func (s *Store) CheckOTP(ctx context.Context, email string, codeHash []byte, now time.Time) (bool, error) {
	var ok bool
	err := s.InTx(ctx, func(tx *Tx) error {
		var row struct {
			CodeHash  []byte    `db:"code_hash"`
			Attempts  int       `db:"attempts"`
			ExpiresAt time.Time `db:"expires_at"`
		}
		if err := tx.getContext(ctx, &row, qLockOTP, email); err != nil {
			if mapErr(err) == ErrNotFound {
				return nil
			}
			return err
		}
		if !now.Before(row.ExpiresAt) || row.Attempts >= OTPMaxAttempts {
			_, err := tx.q.ExecContext(ctx, qDeleteOTP, email)
			return err
		}
		if subtle.ConstantTimeCompare(row.CodeHash, codeHash) == 1 {
			ok = true
			_, err := tx.q.ExecContext(ctx, qDeleteOTP, email)
			return err
		}
		if row.Attempts+1 >= OTPMaxAttempts {
			_, err := tx.q.ExecContext(ctx, qDeleteOTP, email)
			return err
		}
		_, err := tx.q.ExecContext(ctx, qFailOTPAttempt, email)
		return err
	})
	return ok, wrap("check otp", err)
}

// PruneOTPs deletes expired codes and send records older than keep.
func (s *Store) PruneOTPs(ctx context.Context, now time.Time, keep time.Duration) error {
	if _, err := s.q.ExecContext(ctx, qPruneOTPs, now); err != nil {
		return wrap("prune otps", err)
	}
	_, err := s.q.ExecContext(ctx, qPruneOTPSends, now.Add(-keep))
	return wrap("prune otp sends", err)
}

package authserver

import (
	"context"
	"log/slog"
	"time"

	"github.com/authgpts/authgpts/store"
)

// janitorKeep is how long expired codes and refresh tokens are kept: a replay of an
// expired credential is answered invalid_grant either way, and a day of history helps
// when investigating one.
const janitorKeep = 24 * time.Hour

// Registrations (dynamic and metadata-document clients) are removed when nobody used
// them within RegistrationUnusedAfter of their creation, or when they have been idle for
// RegistrationIdleAfter: Claude and ChatGPT register a client per connection (AI-CLIENTS.md
// K4, C2), so the table would otherwise only grow.
const (
	RegistrationUnusedAfter = 24 * time.Hour
	RegistrationIdleAfter   = 90 * 24 * time.Hour
)

// RunJanitor runs Sweep every interval until ctx ends. Every statement is idempotent, so
// every instance may run it.
func RunJanitor(ctx context.Context, st *store.Store, interval time.Duration, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r, err := Sweep(ctx, st, now())
		if r.Codes+r.RefreshTokens+int64(r.Registrations) > 0 {
			log.Info("janitor", "codes", r.Codes, "refresh_tokens", r.RefreshTokens, "registrations", r.Registrations)
		}
		if err != nil && ctx.Err() == nil {
			log.Error("janitor", "err", err)
		}
	}
}

// SweepResult counts what one Sweep deleted.
type SweepResult struct {
	Codes, RefreshTokens int64
	Registrations        int
}

// rateBucketIdle is how long a shared rate-limit bucket must be untouched before it is
// deleted: every limit is per minute, so by then it has refilled and a new one is equal.
const rateBucketIdle = 2 * time.Minute

// Sweep deletes, as of now, expired codes and refresh tokens (kept janitorKeep past
// their expiry), forgotten client-assertion jtis, expired upstream sign-in states,
// unused or idle registrations and rate-limit buckets that have refilled.
func Sweep(ctx context.Context, st *store.Store, now time.Time) (SweepResult, error) {
	var r SweepResult
	cutoff := now.Add(-janitorKeep)
	var err error
	if r.Codes, err = st.DeleteExpiredCodes(ctx, cutoff); err != nil {
		return r, err
	}
	if r.RefreshTokens, err = st.DeleteExpiredRefreshTokens(ctx, cutoff); err != nil {
		return r, err
	}
	if _, err = st.DeleteExpiredAssertionJTIs(ctx, now); err != nil {
		return r, err
	}
	// Outbound sign-in states and own-login assertion jtis, once expired.
	if _, err = st.DeleteExpiredUpstreamLogins(ctx, now); err != nil {
		return r, err
	}
	if _, err = st.DeleteIdleRateBuckets(ctx, now.Add(-rateBucketIdle)); err != nil {
		return r, err
	}
	r.Registrations, err = st.DeleteUnusedRegistrations(ctx, now.Add(-RegistrationUnusedAfter), now.Add(-RegistrationIdleAfter))
	return r, err
}

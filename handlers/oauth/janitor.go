package oauth

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

// RunJanitor deletes expired authorization codes and refresh tokens every interval until
// ctx ends. It is idempotent, so every instance may run it.
func RunJanitor(ctx context.Context, st *store.Store, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-janitorKeep)
		codes, err := st.DeleteExpiredCodes(ctx, cutoff)
		if err == nil {
			var tokens int64
			tokens, err = st.DeleteExpiredRefreshTokens(ctx, cutoff)
			if codes+tokens > 0 {
				log.Info("deleted expired credentials", "codes", codes, "refresh_tokens", tokens)
			}
		}
		if err != nil && ctx.Err() == nil {
			log.Error("janitor", "err", err)
		}
	}
}

package store

import (
	"context"
	"time"
)

const (
	keyColumns = `id, alg, sealed, created_at, retired_at, verify_until`

	// Active keys and retired keys still needed to verify tokens they signed.
	qUsableKeys = `
		SELECT ` + keyColumns + ` FROM signing_keys
		 WHERE retired_at IS NULL OR verify_until > $1
		 ORDER BY retired_at IS NOT NULL, created_at DESC, id`
	// First start: only one instance wins the active slot of an algorithm.
	qInsertActiveKeyIfNone = `
		INSERT INTO signing_keys (id, alg, sealed, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (alg) WHERE retired_at IS NULL DO NOTHING`
	qLockActiveKey = `SELECT id FROM signing_keys WHERE alg = $1 AND retired_at IS NULL FOR UPDATE`
	qRetireKey     = `UPDATE signing_keys SET retired_at = $2, verify_until = $3 WHERE id = $1`
	qInsertKey     = `INSERT INTO signing_keys (id, alg, sealed, created_at) VALUES ($1, $2, $3, $4)`
	qNotifyKeys    = `SELECT pg_notify('` + KeysChannel + `', $1::text)`
	// The longest access-token lifetime any app has: a retired key must verify that long.
	qMaxAccessTokenTTL = `SELECT coalesce(max(access_token_ttl_seconds), 0) FROM apps`
)

// SigningKeyRow is a stored signing key; Sealed is the private key encrypted under a
// key derived from AUTHGPTS_SECRET (oauth.SealKey).
type SigningKeyRow struct {
	ID          string     `db:"id"`
	Alg         string     `db:"alg"`
	Sealed      []byte     `db:"sealed"`
	CreatedAt   time.Time  `db:"created_at"`
	RetiredAt   *time.Time `db:"retired_at"`
	VerifyUntil *time.Time `db:"verify_until"`
}

// IsActive reports whether the key signs (not retired).
func (k SigningKeyRow) IsActive() bool { return k.RetiredAt == nil }

// UsableSigningKeys returns the active keys and the retired keys whose verify_until is
// after now, active first, newest first.
func (s *Store) UsableSigningKeys(ctx context.Context, now time.Time) ([]SigningKeyRow, error) {
	var out []SigningKeyRow
	err := s.selectContext(ctx, &out, qUsableKeys, now)
	return out, wrap("usable signing keys", err)
}

// InsertActiveKeyIfNone stores k as the active key of its algorithm unless another
// instance already did; it reports whether k was stored.
func (s *Store) InsertActiveKeyIfNone(ctx context.Context, k SigningKeyRow) (bool, error) {
	res, err := s.q.ExecContext(ctx, qInsertActiveKeyIfNone, k.ID, k.Alg, k.Sealed, k.CreatedAt)
	if err != nil {
		return false, wrap("insert active key", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("insert active key", err)
}

// RotateSigningKey retires the active key of k.Alg (if any) with the given verify_until,
// stores k as the new active key and announces it on KeysChannel, in one transaction.
// It returns the retired key's ID ("" when there was none).
func (s *Store) RotateSigningKey(ctx context.Context, k SigningKeyRow, verifyUntil time.Time) (string, error) {
	var retired string
	err := s.InTx(ctx, func(tx *Tx) error {
		var ids []string
		if err := tx.selectContext(ctx, &ids, qLockActiveKey, k.Alg); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.q.ExecContext(ctx, qRetireKey, id, k.CreatedAt, verifyUntil); err != nil {
				return err
			}
			retired = id
		}
		if _, err := tx.q.ExecContext(ctx, qInsertKey, k.ID, k.Alg, k.Sealed, k.CreatedAt); err != nil {
			return err
		}
		_, err := tx.q.ExecContext(ctx, qNotifyKeys, k.ID)
		return err
	})
	return retired, wrap("rotate signing key", err)
}

// MaxAccessTokenTTL returns the longest access-token lifetime of any app (0 without apps).
func (s *Store) MaxAccessTokenTTL(ctx context.Context) (time.Duration, error) {
	var secs int64
	err := s.getContext(ctx, &secs, qMaxAccessTokenTTL)
	return time.Duration(secs) * time.Second, wrap("max access token ttl", err)
}

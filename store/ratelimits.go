package store

import (
	"context"
	"fmt"
	"time"
)

const (
	// qLeaseRateTokens refills the bucket for the time since its last lease (never above
	// its capacity $2, at $5 tokens a second), then takes up to $3 whole tokens from it,
	// in one statement: concurrent leases of one key serialize on the row. A new bucket
	// starts full. The bucket's clock never goes back, so instances whose clocks differ
	// a little cannot refill it twice.
	qLeaseRateTokens = `
INSERT INTO rate_buckets AS b (key, tokens, granted, updated_at)
VALUES ($1, $2 - LEAST($3, floor($2)), LEAST($3, floor($2)), $4)
ON CONFLICT (key) DO UPDATE SET
    granted = LEAST($3, floor(LEAST($2, b.tokens + $5 * GREATEST(0, EXTRACT(EPOCH FROM ($4 - b.updated_at)))))),
    tokens = LEAST($2, b.tokens + $5 * GREATEST(0, EXTRACT(EPOCH FROM ($4 - b.updated_at))))
           - LEAST($3, floor(LEAST($2, b.tokens + $5 * GREATEST(0, EXTRACT(EPOCH FROM ($4 - b.updated_at)))))),
    updated_at = GREATEST(b.updated_at, $4)
RETURNING granted, tokens`

	// qReturnRateTokens gives unspent leased tokens back, never above the capacity.
	qReturnRateTokens = `UPDATE rate_buckets SET tokens = LEAST($2, tokens + $3) WHERE key = $1`

	// qDeleteIdleRateBuckets forgets buckets untouched since $1: they have refilled.
	qDeleteIdleRateBuckets = `DELETE FROM rate_buckets WHERE updated_at < $1`
)

// RateLease is the answer to a lease of rate-limit tokens.
type RateLease struct {
	Granted int64   // whole tokens taken (0: the bucket had less than one)
	Left    float64 // tokens left in the bucket after the lease
}

// LeaseRateTokens takes up to want tokens from the bucket of key, whose capacity is
// capacity and which refills at perSecond tokens a second, as of now.
func (s *Store) LeaseRateTokens(ctx context.Context, key string, capacity, perSecond float64, want int64, now time.Time) (RateLease, error) {
	var l RateLease
	if err := s.q.QueryRowxContext(ctx, qLeaseRateTokens, key, capacity, want, now.UTC(), perSecond).Scan(&l.Granted, &l.Left); err != nil {
		return RateLease{}, fmt.Errorf("store: lease rate tokens: %w", err)
	}
	return l, nil
}

// ReturnRateTokens gives n unspent tokens back to the bucket of key.
func (s *Store) ReturnRateTokens(ctx context.Context, key string, capacity float64, n int64) error {
	if _, err := s.q.ExecContext(ctx, qReturnRateTokens, key, capacity, n); err != nil {
		return fmt.Errorf("store: return rate tokens: %w", err)
	}
	return nil
}

// DeleteIdleRateBuckets removes the buckets untouched since before, which are full.
func (s *Store) DeleteIdleRateBuckets(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.q.ExecContext(ctx, qDeleteIdleRateBuckets, before.UTC())
	if err != nil {
		return 0, fmt.Errorf("store: delete idle rate buckets: %w", err)
	}
	return res.RowsAffected()
}

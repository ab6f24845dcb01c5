package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// TestPool_LongServerErrorDoesNotPoisonConnection: an error message over 30,000 bytes
// (PostgreSQL echoes the bad value) used to leave lib/pq's connection out of step with
// the server and back in the pool, so that the next query on it never returned. With one
// connection in the pool, every query after the long error runs on the same connection
// unless the store drops it.
func TestPool_LongServerErrorDoesNotPoisonConnection(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("a", 40_000)

	tests := []struct {
		name string
		run  func(ctx context.Context, s *store.Store) error
	}{
		{"query", func(ctx context.Context, s *store.Store) error {
			var v string
			return s.DB().GetContext(ctx, &v, `SELECT $1::uuid::text`, long)
		}},
		{"store lookup", func(ctx context.Context, s *store.Store) error {
			_, err := s.GrantByID(ctx, long)
			return err
		}},
		{"in a transaction", func(ctx context.Context, s *store.Store) error {
			return s.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.GrantByID(ctx, long)
				return err
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := storetest.NewDB(t)
			s.DB().SetMaxOpenConns(1)
			if err := tt.run(ctx, s); err == nil {
				t.Fatal("a 40,000-character UUID was accepted")
			}
			done := make(chan error, 1)
			go func() {
				var one int
				done <- s.DB().GetContext(ctx, &one, `SELECT 1`)
			}()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("the query after the long error failed: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the query after the long error did not return: its connection was reused out of step")
			}
		})
	}
}

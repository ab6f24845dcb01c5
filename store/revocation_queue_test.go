package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
)

// The revocation queue is claimed with a lease: nothing stays locked (no transaction
// is open) while fn calls a provider, two claimers never get the same row, a failed try
// waits for its lease to end, and an accepted one is gone.
func TestPendingRevocations_LeasesInsteadOfLocks(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	db := f.s.DB()
	const provider = "7a1c9b7e-0000-4000-8000-000000000001"
	if _, err := db.Exec(`INSERT INTO connection_providers (id, app_id, provider, preset, display_name, authorize_url, token_url,
		client_id, client_secret_sealed, key_id, auth_style, pkce, delivery, created_at)
		VALUES ($1, $2, 'acme', 'generic', 'Acme', 'https://acme.example/a', 'https://acme.example/t', 'c', '\x00', 1, 'body', true, 'exchange', now())`,
		provider, f.app.ID); err != nil {
		t.Fatal(err)
	}
	queue := func(n int) {
		for range n {
			if _, err := db.Exec(`INSERT INTO connection_revocations (provider_id, sealed_row_id, key_id, access_sealed, created_at)
				VALUES ($1, gen_random_uuid(), 1, '\x01', now())`, provider); err != nil {
				t.Fatal(err)
			}
		}
	}
	openTx := func() int {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`)
		return n
	}

	// Two claimers at once: every row once, and no transaction open during the calls.
	queue(20)
	now := f.now
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				_, claimed, err := f.s.PendingRevocations(ctx, now, 5, func(r store.PendingRevocation) bool {
					if n := openTx(); n != 0 {
						t.Errorf("%d transactions open while a provider is called", n)
					}
					mu.Lock()
					seen[r.ID]++
					mu.Unlock()
					return true
				})
				if err != nil {
					t.Error(err)
					return
				}
				if claimed == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Errorf("%d rows revoked, want 20", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("row %d revoked %d times", id, n)
		}
	}

	// A failed try is due again only after its lease.
	queue(1)
	fail := func(store.PendingRevocation) bool { return false }
	if _, claimed, _ := f.s.PendingRevocations(ctx, now, 5, fail); claimed != 1 {
		t.Fatalf("claimed %d, want the queued row", claimed)
	}
	if _, claimed, _ := f.s.PendingRevocations(ctx, now.Add(time.Minute), 5, fail); claimed != 0 {
		t.Errorf("a failed row was claimed again within its lease")
	}
	done, claimed, err := f.s.PendingRevocations(ctx, now.Add(store.RevocationLease+time.Second), 5, func(store.PendingRevocation) bool { return true })
	if err != nil || claimed != 1 || done != 1 {
		t.Errorf("after the lease: claimed %d, done %d (%v); want 1 and 1", claimed, done, err)
	}
	var left int
	_ = db.Get(&left, `SELECT count(*) FROM connection_revocations`)
	if left != 0 {
		t.Errorf("%d revocations left, want 0", left)
	}
}

package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// Linking merges whole groups, is idempotent, stops at MaxLinkedIdentities without a
// partial write, and unlinking the last other member dissolves the group.
func TestIdentityLinks_MergeCapAndUnlink(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	users := make([]store.User, store.MaxLinkedIdentities+1)
	var err error
	for i := range users {
		if users[i], err = s.EnsureUser(ctx, fmt.Sprintf("id-%d@example.com", i)); err != nil {
			t.Fatal(err)
		}
	}
	link := func(a, b int) error {
		return s.LinkIdentities(ctx, users[a].ID, users[b].ID, nil, store.AuditEntry{ActorID: users[a].ID})
	}
	group := func(i int) []string {
		g, err := s.IdentityGroup(ctx, users[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		return store.UserIDs(g)
	}

	// Two groups of two become one group of four, whichever member links.
	for _, pair := range [][2]int{{0, 1}, {2, 3}, {1, 3}, {0, 3}} {
		if err := link(pair[0], pair[1]); err != nil {
			t.Fatalf("link %v: %v", pair, err)
		}
	}
	if g := group(2); len(g) != 4 || g[0] != users[2].ID {
		t.Fatalf("group of user 2 = %v, want 4 identities, its own first", g)
	}
	// Up to the cap, then ErrConflict and nothing moves.
	for i := 4; i < store.MaxLinkedIdentities; i++ {
		if err := link(0, i); err != nil {
			t.Fatalf("link 0-%d: %v", i, err)
		}
	}
	if err := link(0, store.MaxLinkedIdentities); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("linking past the cap: %v, want ErrConflict", err)
	}
	if g := group(store.MaxLinkedIdentities); len(g) != 1 {
		t.Errorf("the refused identity is in a group of %d", len(g))
	}
	var audits int
	_ = s.DB().Get(&audits, `SELECT count(*) FROM audit_log WHERE action = 'identity.linked'`)
	if audits != store.MaxLinkedIdentities-1 {
		t.Errorf("%d identity.linked entries, want %d (one per link that changed something)", audits, store.MaxLinkedIdentities-1)
	}

	// An identity that must be alone to be linked is refused once it is in a group.
	loner := users[store.MaxLinkedIdentities]
	if err := s.LinkIdentities(ctx, loner.ID, users[1].ID, []string{users[1].ID}, store.AuditEntry{}); !errors.Is(err, store.ErrLinkedElsewhere) {
		t.Errorf("linking an identity that must be alone but is grouped: %v, want ErrLinkedElsewhere", err)
	}

	// Unlinking: from outside the group is ErrNotFound; the last pair dissolves.
	if err := s.UnlinkIdentity(ctx, users[store.MaxLinkedIdentities].ID, users[0].ID, store.AuditEntry{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unlink from outside the group: %v, want ErrNotFound", err)
	}
	for i := 1; i < store.MaxLinkedIdentities; i++ {
		if err := s.UnlinkIdentity(ctx, users[0].ID, users[i].ID, store.AuditEntry{ActorID: users[0].ID}); err != nil {
			t.Fatalf("unlink %d: %v", i, err)
		}
	}
	var grouped int
	_ = s.DB().Get(&grouped, `SELECT count(*) FROM users WHERE link_id IS NOT NULL`)
	if grouped != 0 {
		t.Errorf("%d users still carry a link_id after every identity was unlinked", grouped)
	}
}

// Links racing on overlapping groups neither deadlock nor lose a member: however they
// interleave, every identity ends in one group.
func TestIdentityLinks_ConcurrentLinksOfOverlappingGroups(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	const n = 8
	ids := make([]string, n)
	for i := range ids {
		u, err := s.EnsureUser(ctx, fmt.Sprintf("race-%d@example.com", i))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = u.ID
	}
	// A ring, both ways round, and across: every link overlaps others' groups.
	var pairs [][2]int
	for i := range n {
		pairs = append(pairs, [2]int{i, (i + 1) % n}, [2]int{(i + 1) % n, i}, [2]int{i, (i + n/2) % n})
	}
	errs := make(chan error, len(pairs))
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Go(func() {
			errs <- s.LinkIdentities(ctx, ids[p[0]], ids[p[1]], nil, store.AuditEntry{ActorID: ids[p[0]]})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent link: %v", err)
		}
	}
	g, err := s.IdentityGroup(ctx, ids[0])
	if err != nil || len(g) != n {
		t.Errorf("group after the race = %d identities (%v), want %d", len(g), err, n)
	}
}

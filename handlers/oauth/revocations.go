package oauth

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/authgpts/authgpts/store"
)

// revocationWindow is how far back revocations matter: the longest access-token lifetime
// the schema allows (30 days); a token of a grant revoked earlier has expired anyway.
const revocationWindow = 30 * 24 * time.Hour

// revocationReload is how often the set is rebuilt from the database, which also drops
// revocations older than revocationWindow.
const revocationReload = time.Hour

// revocationSet answers "is this grant revoked?" for access tokens (introspection,
// userinfo) without a database round trip. It is loaded from the database on first
// use, kept current by NOTIFY on store.RevocationsChannel (every RevokeGrant sends one
// in its transaction) and by this instance's own revocations, and rebuilt after a
// listener reconnection and every hour.
type revocationSet struct {
	store *store.Store
	now   func() time.Time

	mu       sync.RWMutex
	ids      map[string]time.Time // grant ID → when this instance learnt of it (wall clock)
	loadedAt time.Time            // wall clock; zero: load before answering

	loadMu sync.Mutex
}

func newRevocationSet(st *store.Store, now func() time.Time) *revocationSet {
	return &revocationSet{store: st, now: now, ids: make(map[string]time.Time)}
}

// isRevoked reports whether grantID was revoked. An empty ID (client_credentials
// tokens hang off no grant) is never revoked.
func (r *revocationSet) isRevoked(ctx context.Context, grantID string) (bool, error) {
	if grantID == "" {
		return false, nil
	}
	r.mu.RLock()
	_, revoked := r.ids[grantID]
	loadedAt := r.loadedAt
	r.mu.RUnlock()
	if loadedAt.IsZero() {
		if err := r.load(ctx); err != nil {
			return false, err
		}
		r.mu.RLock()
		_, revoked = r.ids[grantID]
		r.mu.RUnlock()
	} else if time.Since(loadedAt) > revocationReload && r.loadMu.TryLock() {
		r.loadMu.Unlock()
		go func() { _ = r.load(context.WithoutCancel(ctx)) }()
	}
	return revoked, nil
}

// load rebuilds the set from the database. Revocations learnt while the query runs are
// merged into the new set; older ones are in the query's answer or out of the window.
func (r *revocationSet) load(ctx context.Context) error {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	r.mu.RLock()
	fresh := !r.loadedAt.IsZero() && time.Since(r.loadedAt) < time.Second
	r.mu.RUnlock()
	if fresh {
		return nil
	}
	started := time.Now()
	ids, err := r.store.RevokedGrantIDs(ctx, r.now().Add(-revocationWindow))
	if err != nil {
		return err
	}
	set := make(map[string]time.Time, len(ids))
	for _, id := range ids {
		set[id] = started
	}
	r.mu.Lock()
	for id, at := range r.ids {
		if !at.Before(started) { // learnt while the query ran: it may not be in ids
			set[id] = at
		}
	}
	r.ids = set
	r.loadedAt = started
	r.mu.Unlock()
	return nil
}

// add records a revocation made by this instance, before its NOTIFY comes back.
func (r *revocationSet) add(grantID string) {
	r.mu.Lock()
	r.ids[grantID] = time.Now()
	r.mu.Unlock()
}

// onNotify handles a payload "grant:<id>".
func (r *revocationSet) onNotify(payload string) {
	if id, ok := strings.CutPrefix(payload, "grant:"); ok && id != "" {
		r.add(id)
	}
}

// resync forces a reload before the next answer: notifications may have been lost.
func (r *revocationSet) resync() {
	r.mu.Lock()
	r.loadedAt = time.Time{}
	r.mu.Unlock()
}

package authserver

import (
	"context"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/authgpts/authgpts/store"
)

// grantCheckTTL is how long a "live" answer about a grant is trusted without a NOTIFY.
const grantCheckTTL = 5 * time.Second

// maxCachedGrants bounds the grant-status cache.
const maxCachedGrants = 100_000

// grantStatus answers "may access tokens of this grant still be honoured?" for
// introspection and userinfo, with at most one database lookup per grant every
// grantCheckTTL rather than one per request. The answer is "no" when the grant is
// revoked or gone (its user deleted) or its user is suspended.
//
// It listens on store.RevocationsChannel: "grant:<id>" (every RevokeGrant, account
// deletion) marks the grant dead at once, for good (revocation is final); "user:<id>"
// (suspension, deletion) drops what is known about that user's grants so the next
// request looks again. A listener reconnection drops everything. A suspended user's
// grants are rechecked every grantCheckTTL, so an unsuspension (which sends nothing)
// takes effect within it.
type grantStatus struct {
	store *store.Store
	now   func() time.Time

	mu    sync.RWMutex
	m     map[string]grantEntry
	group singleflight.Group
}

type grantEntry struct {
	live      bool
	final     bool   // revoked or deleted: never rechecked
	userID    string // "" when unknown (marked by a notification)
	checkedAt time.Time
}

func newGrantStatus(st *store.Store, now func() time.Time) *grantStatus {
	return &grantStatus{store: st, now: now, m: make(map[string]grantEntry)}
}

// isLive reports whether the grant's tokens may be honoured. An empty grant ID
// (client_credentials tokens hang off no grant) is live.
func (g *grantStatus) isLive(ctx context.Context, grantID string) (bool, error) {
	if grantID == "" {
		return true, nil
	}
	g.mu.RLock()
	e, ok := g.m[grantID]
	g.mu.RUnlock()
	if ok && (e.final || g.now().Sub(e.checkedAt) < grantCheckTTL) {
		return e.live, nil
	}
	v, err, _ := g.group.Do(grantID, func() (any, error) {
		st, err := g.store.GrantLiveness(context.WithoutCancel(ctx), grantID)
		if err != nil {
			return nil, err
		}
		e := grantEntry{live: st.Live(), final: !st.Exists || st.Revoked, userID: st.UserID, checkedAt: g.now()}
		g.mu.Lock()
		if cur, ok := g.m[grantID]; !ok || !cur.final { // a revocation learnt meanwhile wins
			if len(g.m) >= maxCachedGrants {
				g.m = make(map[string]grantEntry)
			}
			g.m[grantID] = e
		} else {
			e = cur
		}
		g.mu.Unlock()
		return e.live, nil
	})
	if err != nil {
		return false, err
	}
	return v.(bool), nil
}

// revoked records a revocation made or announced: final.
func (g *grantStatus) revoked(grantID string) {
	g.mu.Lock()
	if len(g.m) >= maxCachedGrants {
		g.m = make(map[string]grantEntry)
	}
	g.m[grantID] = grantEntry{live: false, final: true, checkedAt: g.now()}
	g.mu.Unlock()
}

// onNotify handles a payload of store.RevocationsChannel.
func (g *grantStatus) onNotify(payload string) {
	kind, id, _ := strings.Cut(payload, ":")
	switch kind {
	case "grant":
		g.revoked(id)
	case "user":
		g.mu.Lock()
		for gid, e := range g.m {
			if !e.final && (e.userID == id || e.userID == "") {
				delete(g.m, gid)
			}
		}
		g.mu.Unlock()
	}
	// "app:<id>" and "client:<id>" (suspension, deletion) reach the client cache through
	// the client-table triggers.
}

// resync forgets everything that is not final: notifications may have been lost.
func (g *grantStatus) resync() {
	g.mu.Lock()
	for gid, e := range g.m {
		if !e.final {
			delete(g.m, gid)
		}
	}
	g.mu.Unlock()
}

package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// grantFixture creates a user, an app with a GPT client and a grant.
func grantFixture(t *testing.T, s *store.Store) (store.User, store.Client, store.Grant) {
	t.Helper()
	ctx := context.Background()
	u, err := s.EnsureUser(ctx, "user-"+time.Now().Format("150405.000000")+"@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, c, err := s.CreateApp(ctx, store.NewApp{OwnerID: u.ID, Name: "App", Client: store.NewClient{
		ID: "agpt_" + time.Now().Format("150405.000000"), Name: "c", Kind: store.ClientKindGPT, RedirectURIs: []string{"https://x.example/cb"}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.UpsertGrant(ctx, store.NewGrant{UserID: u.ID, ClientID: c.ID, AppID: c.AppID, Scopes: []string{"openid", "email"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return u, c, g
}

func TestUpsertGrant_OneLiveGrantPerUserAndClient(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	u, c, g := grantFixture(t, s)
	g2, err := s.UpsertGrant(ctx, store.NewGrant{UserID: u.ID, ClientID: c.ID, AppID: c.AppID, Scopes: []string{"openid"}}, time.Now())
	if err != nil || g2.ID != g.ID || len(g2.Scopes) != 1 {
		t.Fatalf("second consent = %+v, %v; want the same grant with the new scopes", g2, err)
	}
	if ok, err := s.RevokeGrant(ctx, g.ID, time.Now()); !ok || err != nil {
		t.Fatalf("RevokeGrant = %v, %v", ok, err)
	}
	if ok, _ := s.RevokeGrant(ctx, g.ID, time.Now()); ok {
		t.Error("revoking twice reported a revocation")
	}
	g3, err := s.UpsertGrant(ctx, store.NewGrant{UserID: u.ID, ClientID: c.ID, AppID: c.AppID, Scopes: []string{"openid"}}, time.Now())
	if err != nil || g3.ID == g.ID {
		t.Fatalf("consent after revocation = %+v, %v; want a new grant", g3, err)
	}
}

// TestRevokeGrant_NotifiesInTheSameTransaction: the revocation, its refresh tokens and
// the NOTIFY happen together; a rolled-back revocation sends nothing.
func TestRevokeGrant_NotifiesInTheSameTransaction(t *testing.T) {
	t.Parallel()
	dsn := storetest.NewDSN(t)
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	u, c, g := grantFixture(t, s)
	if err := s.CreateRefreshToken(ctx, store.NewRefreshToken{Hash: []byte("h1"), GrantID: g.ID, ClientID: c.ID, UserID: u.ID,
		AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}, time.Now()); err != nil {
		t.Fatal(err)
	}

	l := pq.NewListener(dsn, time.Second, time.Second, nil)
	defer l.Close()
	if err := l.Listen(store.RevocationsChannel); err != nil {
		t.Fatal(err)
	}
	// Rolled back: no notification, nothing revoked.
	rollback := errors.New("rollback")
	_ = s.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.RevokeGrant(ctx, g.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
		return rollback
	})
	if got, _ := s.GrantByID(ctx, g.ID); got.IsRevoked() {
		t.Fatal("rolled-back revocation stuck")
	}
	if _, err := s.RevokeGrant(ctx, g.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-l.Notify:
		if n.Extra != "grant:"+g.ID {
			t.Fatalf("notification %q, want grant:%s", n.Extra, g.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	rt, err := s.RefreshTokenByHash(ctx, []byte("h1"))
	if err != nil || rt.RevokedAt == nil || !rt.GrantRevoked {
		t.Errorf("refresh token after revocation = %+v, %v; want revoked", rt, err)
	}
}

func TestRedeemCode_SingleUseBoundAndReuseReported(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	u, c, g := grantFixture(t, s)
	now := time.Now()
	nc := store.NewCode{Hash: []byte("code-1"), GrantID: g.ID, ClientID: c.ID, UserID: u.ID, RedirectURI: "https://x.example/cb",
		RedirectURIGiven: true, Scopes: []string{"openid"}, AuthTime: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateCode(ctx, nc, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemCode(ctx, nc.Hash, "agpt_other", now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another client's redemption err = %v, want ErrNotFound", err)
	}
	rc, err := s.RedeemCode(ctx, nc.Hash, c.ID, now)
	if err != nil || rc.GrantID != g.ID || rc.Email != u.Email || !rc.RedirectURIGiven {
		t.Fatalf("RedeemCode = %+v, %v", rc, err)
	}
	rc, err = s.RedeemCode(ctx, nc.Hash, c.ID, now)
	if !errors.Is(err, store.ErrCodeReused) || rc.GrantID != g.ID {
		t.Fatalf("second redemption = %+v, %v; want ErrCodeReused with the grant", rc, err)
	}
	// Expired codes are plain not-found.
	nc.Hash = []byte("code-2")
	_ = s.CreateCode(ctx, nc, now)
	if _, err := s.RedeemCode(ctx, nc.Hash, c.ID, now.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired code err = %v, want ErrNotFound", err)
	}
}

// The code exchange's one statement: it redeems the code and stores the refresh token
// together, once; a used, expired, revoked or other client's code writes nothing.
func TestRedeemCodeIssuingRefresh_OneStatementSingleUse(t *testing.T) {
	s := storetest.NewDB(t)
	ctx := context.Background()
	u, c, g := grantFixture(t, s)
	now := time.Now()
	nc := store.NewCode{Hash: []byte("code-x1"), GrantID: g.ID, ClientID: c.ID, UserID: u.ID, RedirectURI: "https://x.example/cb",
		Scopes: []string{"openid"}, Resource: "https://r.example/gw/a", AuthTime: now.Add(-time.Minute).Truncate(time.Second), ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateCode(ctx, nc, now); err != nil {
		t.Fatal(err)
	}
	refreshRows := func(hash string) int {
		var n int
		_ = s.DB().Get(&n, `SELECT count(*) FROM refresh_tokens WHERE hash = $1`, []byte(hash))
		return n
	}
	peeked, err := s.PeekCode(ctx, nc.Hash, c.ID, now)
	if err != nil || peeked.GrantID != g.ID || peeked.Email != u.Email {
		t.Fatalf("PeekCode = %+v, %v", peeked, err)
	}
	if _, err := s.RedeemCodeIssuingRefresh(ctx, nc.Hash, "agpt_other", []byte("rt-other"), now.Add(time.Hour), now); !errors.Is(err, store.ErrNotFound) || refreshRows("rt-other") != 0 {
		t.Fatalf("another client's exchange: err = %v, want ErrNotFound and no refresh token", err)
	}
	grantID, err := s.RedeemCodeIssuingRefresh(ctx, nc.Hash, c.ID, []byte("rt-1"), now.Add(time.Hour), now)
	if err != nil || grantID != g.ID {
		t.Fatalf("exchange = %q, %v", grantID, err)
	}
	rt, err := s.RefreshTokenByHash(ctx, []byte("rt-1"))
	if err != nil || rt.GrantID != g.ID || rt.UserID != u.ID || rt.ClientID != c.ID || rt.Resource != nc.Resource ||
		len(rt.Scopes) != 1 || !rt.AuthTime.Equal(nc.AuthTime) || !rt.IsLive(now) {
		t.Fatalf("refresh token = %+v, %v; want it bound to the code's grant", rt, err)
	}
	// Used: a replay is reported with the grant to revoke, and writes nothing.
	if _, err := s.PeekCode(ctx, nc.Hash, c.ID, now); !errors.Is(err, store.ErrCodeReused) {
		t.Errorf("peek of a used code err = %v, want ErrCodeReused", err)
	}
	grantID, err = s.RedeemCodeIssuingRefresh(ctx, nc.Hash, c.ID, []byte("rt-2"), now.Add(time.Hour), now)
	if !errors.Is(err, store.ErrCodeReused) || grantID != g.ID || refreshRows("rt-2") != 0 {
		t.Fatalf("second exchange = %q, %v; want ErrCodeReused with the grant and no refresh token", grantID, err)
	}
	// Expired, or under a revoked grant: not found, nothing written.
	nc.Hash = []byte("code-x2")
	_ = s.CreateCode(ctx, nc, now)
	if _, err := s.RedeemCodeIssuingRefresh(ctx, nc.Hash, c.ID, []byte("rt-3"), now.Add(time.Hour), now.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) || refreshRows("rt-3") != 0 {
		t.Errorf("expired code: err = %v, want ErrNotFound and no refresh token", err)
	}
	if _, err := s.RevokeGrant(ctx, g.ID, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PeekCode(ctx, nc.Hash, c.ID, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("peek under a revoked grant err = %v, want ErrNotFound", err)
	}
	if _, err := s.RedeemCodeIssuingRefresh(ctx, nc.Hash, c.ID, []byte("rt-4"), now.Add(time.Hour), now); !errors.Is(err, store.ErrNotFound) || refreshRows("rt-4") != 0 {
		t.Errorf("revoked grant: err = %v, want ErrNotFound and no refresh token", err)
	}
}

func TestCreateCodeUnderGrant_OnlyWhenScopesCovered(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	u, c, g := grantFixture(t, s)
	now := time.Now()
	nc := store.NewCode{Hash: []byte("c1"), ClientID: c.ID, UserID: u.ID, AppID: c.AppID, RedirectURI: "https://x.example/cb", Scopes: []string{"email"}, AuthTime: now, ExpiresAt: now.Add(time.Minute)}
	gid, err := s.CreateCodeUnderGrant(ctx, nc, now)
	if err != nil || gid != g.ID {
		t.Fatalf("covered: %q, %v", gid, err)
	}
	nc.Hash, nc.Scopes = []byte("c2"), []string{"email", "profile"}
	if _, err := s.CreateCodeUnderGrant(ctx, nc, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("not covered: err = %v, want ErrNotFound", err)
	}
}

// The remembered-consent code insert commits without waiting for the WAL flush, for its
// own transaction only: the pooled connection keeps its setting, so the redemption and
// every other write after it on that connection commit synchronously.
func TestCreateCodeUnderGrant_AsyncCommitDoesNotLeakToTheConnection(t *testing.T) {
	s := storetest.NewDB(t)
	ctx := context.Background()
	u, c, _ := grantFixture(t, s)
	s.DB().SetMaxOpenConns(1) // every statement below runs on one connection
	if _, err := s.DB().ExecContext(ctx, `SET synchronous_commit = on`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	nc := store.NewCode{Hash: []byte("c-async"), ClientID: c.ID, UserID: u.ID, AppID: c.AppID, RedirectURI: "https://x.example/cb",
		Scopes: []string{"email"}, AuthTime: now, ExpiresAt: now.Add(time.Minute)}
	if _, err := s.CreateCodeUnderGrant(ctx, nc, now); err != nil {
		t.Fatal(err)
	}
	var setting string
	if err := s.DB().GetContext(ctx, &setting, `SHOW synchronous_commit`); err != nil {
		t.Fatal(err)
	}
	if setting != "on" {
		t.Errorf("synchronous_commit after the code insert = %q, want the connection's own \"on\"", setting)
	}
}

// TestRotateRefreshToken_ConcurrentOnlyOneWins: of many concurrent rotations of one
// token exactly one stores a successor, and the grant is not revoked.
func TestRotateRefreshToken_ConcurrentOnlyOneWins(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	u, c, g := grantFixture(t, s)
	now := time.Now()
	if err := s.CreateRefreshToken(ctx, store.NewRefreshToken{Hash: []byte("parent"), GrantID: g.ID, ClientID: c.ID, UserID: u.ID,
		Scopes: []string{"openid"}, AuthTime: now, ExpiresAt: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	parent, err := s.RefreshTokenByHash(ctx, []byte("parent"))
	if err != nil {
		t.Fatal(err)
	}
	if g2, _ := s.GrantByID(ctx, g.ID); g2.LastUsedAt == nil {
		t.Error("issuing a refresh token did not record the grant's last use")
	}
	const n = 8
	var wg sync.WaitGroup
	wins := make(chan bool, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.RotateRefreshToken(ctx, parent.ID, []byte("child"), now.Add(time.Hour), now)
			if err != nil {
				t.Error(err)
			}
			wins <- ok
		}()
	}
	wg.Wait()
	close(wins)
	won := 0
	for ok := range wins {
		if ok {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("%d rotations won, want exactly 1", won)
	}
	child, err := s.RefreshTokenByHash(ctx, []byte("child"))
	if err != nil || !child.IsLive(now) || child.GrantID != g.ID || len(child.Scopes) != 1 {
		t.Fatalf("successor = %+v, %v", child, err)
	}
	if p, _ := s.RefreshTokenByHash(ctx, []byte("parent")); p.RotatedAt == nil || p.IsLive(now) || p.GrantRevoked {
		t.Errorf("parent = %+v, want rotated and the grant live", p)
	}
}

func TestSigningKeys_OneActivePerAlgorithm(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	now := time.Now().UTC()
	ok, err := s.InsertActiveKeyIfNone(ctx, store.SigningKeyRow{ID: "k1", Alg: "RS256", Sealed: []byte{1}, CreatedAt: now})
	if err != nil || !ok {
		t.Fatalf("first RS256: %v %v", ok, err)
	}
	if ok, _ := s.InsertActiveKeyIfNone(ctx, store.SigningKeyRow{ID: "k2", Alg: "RS256", Sealed: []byte{1}, CreatedAt: now}); ok {
		t.Error("a second active RS256 key was stored")
	}
	if ok, _ := s.InsertActiveKeyIfNone(ctx, store.SigningKeyRow{ID: "k3", Alg: "ES256", Sealed: []byte{1}, CreatedAt: now}); !ok {
		t.Error("the ES256 key was refused")
	}
	retired, err := s.RotateSigningKey(ctx, store.SigningKeyRow{ID: "k4", Alg: "RS256", Sealed: []byte{1}, CreatedAt: now}, now.Add(time.Hour))
	if err != nil || retired != "k1" {
		t.Fatalf("rotate = %q, %v", retired, err)
	}
	keys, _ := s.UsableSigningKeys(ctx, now.Add(30*time.Minute))
	if len(keys) != 3 || !keys[0].IsActive() || keys[2].ID != "k1" {
		t.Errorf("usable keys = %+v", keys)
	}
	if keys, _ := s.UsableSigningKeys(ctx, now.Add(2*time.Hour)); len(keys) != 2 {
		t.Errorf("after verify_until: %d keys, want 2", len(keys))
	}
}

// TestClientTriggers_NotifyOnChange: writes to the client tables announce themselves;
// bookkeeping columns do not.
func TestClientTriggers_NotifyOnChange(t *testing.T) {
	t.Parallel()
	dsn := storetest.NewDSN(t)
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, c, _ := grantFixture(t, s)
	l := pq.NewListener(dsn, time.Second, time.Second, nil)
	defer l.Close()
	if err := l.Listen(store.ClientsChannel); err != nil {
		t.Fatal(err)
	}
	db := s.DB()
	db.MustExec(`UPDATE clients SET last_used_at = now() WHERE id = $1`, c.ID) // silent
	db.MustExec(`UPDATE clients SET name = 'renamed' WHERE id = $1`, c.ID)
	db.MustExec(`UPDATE apps SET access_token_ttl_seconds = 120 WHERE id = $1`, c.AppID)
	db.MustExec(`INSERT INTO client_secrets (client_id, secret_hash, hint) VALUES ($1, 'x', 'y')`, c.ID)
	want := []string{"client:" + c.ID, "app:" + c.AppID, "client:" + c.ID}
	for _, w := range want {
		select {
		case n := <-l.Notify:
			if n.Extra != w {
				t.Fatalf("notification %q, want %q", n.Extra, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification, want %q", w)
		}
	}
}

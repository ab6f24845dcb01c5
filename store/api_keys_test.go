package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// Keys are found by hash only; a personal key lives only while its user has a live
// grant for the app; revocation is owner-scoped and announced on commit.
func TestAPIKeys_LookupUsableAndRevocation(t *testing.T) {
	t.Parallel()
	dsn := storetest.NewDSN(t)
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	owner, _ := s.EnsureUser(ctx, "key-owner@example.com")
	intruder, _ := s.EnsureUser(ctx, "key-intruder@example.com")
	app, client, err := s.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "Keys",
		Client: store.NewClient{ID: "agpt_keys", Name: "c", Kind: store.ClientKindGPT, SecretHash: []byte("h"), SecretHint: "…h"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateDeveloperKey(ctx, intruder.ID, store.NewAPIKey{AppID: app.ID, Name: "x", Hash: []byte("hx"), Hint: "…x"}, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a key on another developer's app: %v", err)
	}
	exp := now.Add(time.Hour)
	devID, err := s.CreateDeveloperKey(ctx, owner.ID, store.NewAPIKey{AppID: app.ID, Name: "dev", Hash: []byte("h-dev"), Hint: "…dev", ExpiresAt: &exp}, now)
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.APIKeyByHash(ctx, []byte("h-dev"))
	if err != nil || k.ID != devID || !k.Usable(app.ID, now) || k.Usable(app.ID, exp) || k.Usable("other-app", now) {
		t.Fatalf("developer key = %+v, %v", k, err)
	}
	if _, err := s.APIKeyByHash(ctx, []byte("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown hash: %v", err)
	}

	user, _ := s.EnsureUser(ctx, "key-user@example.com")
	if _, err := s.DB().Exec(`INSERT INTO grants (user_id, client_id, app_id, scopes) VALUES ($1, $2, $3, $4)`, user.ID, client.ID, app.ID, pq.Array([]string{"openid", "email"})); err != nil {
		t.Fatal(err)
	}
	holder, granted, err := s.KeyHolder(ctx, []string{intruder.ID, user.ID}, app.ID)
	if err != nil || holder != user.ID || len(granted) != 2 {
		t.Fatalf("granted = %v, %v", granted, err)
	}
	pID, err := s.CreatePersonalKey(ctx, user.ID, store.NewAPIKey{AppID: app.ID, Name: "mine", Hash: []byte("h-user"), Hint: "…u", Scopes: []string{"email"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := s.APIKeyByHash(ctx, []byte("h-user")); !k.Usable(app.ID, now) || k.UserID != user.ID {
		t.Fatalf("personal key = %+v", k)
	}
	if _, err := s.DB().Exec(`UPDATE grants SET revoked_at = now() WHERE user_id = $1`, user.ID); err != nil {
		t.Fatal(err)
	}
	if k, _ := s.APIKeyByHash(ctx, []byte("h-user")); k.Usable(app.ID, now) {
		t.Error("a personal key outlived its user's grants")
	}

	l := pq.NewListener(dsn, time.Second, time.Second, nil)
	defer l.Close()
	if err := l.Listen(store.RevocationsChannel); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeDeveloperKey(ctx, intruder.ID, devID, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("intruder revoke: %v", err)
	}
	if err := s.RevokePersonalKey(ctx, []string{intruder.ID}, pID, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another user's revoke: %v", err)
	}
	if err := s.RevokeDeveloperKey(ctx, owner.ID, devID, now); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-l.Notify:
		if n.Extra != "apikey:"+devID {
			t.Fatalf("notification %q", n.Extra)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	if err := s.RevokeDeveloperKey(ctx, owner.ID, devID, now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second revoke: %v", err)
	}
	if k, _ := s.APIKeyByHash(ctx, []byte("h-dev")); k.Usable(app.ID, now) || !k.Revoked {
		t.Errorf("revoked key = %+v", k)
	}
}

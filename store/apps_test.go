package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

func TestSlugFromName(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, want string }{
		{"Weather API", "weather-api"},
		{"  --Hello, World!--  ", "hello-world"},
		{"日本語", "app"},
		{"a very long name that goes on and on and on forever", "a-very-long-name-that-goes-on-and-on-and"},
	}
	for _, tt := range tests {
		if got := store.SlugFromName(tt.name); got != tt.want || !store.ValidSlug(got) {
			t.Errorf("SlugFromName(%q) = %q, want %q (valid)", tt.name, got, tt.want)
		}
	}
}

func TestCreateApp_DerivedSlugsStayUniqueAndExplicitConflicts(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	u, _ := s.EnsureUser(ctx, "owner@example.com")
	now := time.Now()
	mk := func(name, slug, clientID string) (store.App, error) {
		a, _, err := s.CreateApp(ctx, store.NewApp{OwnerID: u.ID, Name: name, Slug: slug,
			Client: store.NewClient{ID: clientID, Name: "c", Kind: store.ClientKindPublic}}, now)
		return a, err
	}
	a1, err := mk("Weather", "", "c1")
	if err != nil || a1.Slug != "weather" {
		t.Fatalf("first app slug = %q, err %v", a1.Slug, err)
	}
	a2, err := mk("Weather", "", "c2")
	if err != nil || a2.Slug != "weather-2" {
		t.Fatalf("second app slug = %q, err %v; want weather-2", a2.Slug, err)
	}
	if _, err := mk("Other", "weather", "c3"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("explicit taken slug err = %v, want ErrConflict", err)
	}
	// The failed creation left nothing behind: no client c3, no third app.
	if _, err := s.ClientByID(ctx, "c3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("client of the failed app exists (err = %v)", err)
	}
	apps, _ := s.AppsByOwner(ctx, u.ID)
	if len(apps) != 2 || apps[0].ClientCount != 1 {
		t.Errorf("apps = %d (client count %d), want 2 with 1 client each", len(apps), apps[0].ClientCount)
	}
	scopes, _ := s.ScopesByApp(ctx, a1.ID)
	if len(scopes) != 3 || scopes[0].Name != "openid" {
		t.Errorf("scopes = %v, want the three built-ins", scopes)
	}
}

func TestRotateClientSecret_OverlapWindow(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	u, _ := s.EnsureUser(ctx, "rot@example.com")
	now := time.Now()
	_, c, err := s.CreateApp(ctx, store.NewApp{OwnerID: u.ID, Name: "Rot",
		Client: store.NewClient{ID: "rot1", Name: "c", Kind: store.ClientKindGPT, SecretHash: []byte("h1"), SecretHint: "…aaaa"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RotateClientSecret(ctx, c.ID, []byte("h2"), "…bbbb", time.Hour, now); err != nil {
		t.Fatal(err)
	}
	active, _ := s.ActiveSecrets(ctx, c.ID, now.Add(59*time.Minute))
	if len(active) != 2 {
		t.Fatalf("secrets active inside the window = %d, want 2", len(active))
	}
	active, _ = s.ActiveSecrets(ctx, c.ID, now.Add(61*time.Minute))
	if len(active) != 1 || string(active[0].Hash) != "h2" {
		t.Fatalf("secrets active after the window = %v, want only the new one", active)
	}
	if err := s.RotateClientSecret(ctx, c.ID, []byte("h3"), "…cccc", 0, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	active, _ = s.ActiveSecrets(ctx, c.ID, now.Add(2*time.Minute))
	if len(active) != 1 || string(active[0].Hash) != "h3" {
		t.Fatalf("after a rotation with no overlap = %d secrets, want only the newest", len(active))
	}
}

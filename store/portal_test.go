package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// portalFixture is one developer's app with a GPT client, and a second developer.
type portalFixture struct {
	s        *store.Store
	owner    store.User
	intruder store.User
	app      store.App
	client   store.Client
	now      time.Time
}

func newPortalFixture(t *testing.T) portalFixture {
	t.Helper()
	s := storetest.NewDB(t)
	ctx := context.Background()
	owner, err := s.EnsureUser(ctx, "owner@example.com")
	if err != nil {
		t.Fatal(err)
	}
	intruder, err := s.EnsureUser(ctx, "intruder@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	app, client, err := s.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "Weather",
		Client: store.NewClient{ID: "agpt_weather", Name: "GPT", Kind: store.ClientKindGPT,
			RedirectURIs: []string{"https://chatgpt.com/aip/g-1/oauth/callback"}, SecretHash: []byte("h1"), SecretHint: "…aaaa"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	return portalFixture{s: s, owner: owner, intruder: intruder, app: app, client: client, now: now}
}

func TestUpdateAppSettings_SavesAndSlugConflicts(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	other, _, err := f.s.CreateApp(ctx, store.NewApp{OwnerID: f.intruder.ID, Name: "Taken",
		Client: store.NewClient{ID: "agpt_taken", Name: "c", Kind: store.ClientKindPublic}}, f.now)
	if err != nil {
		t.Fatal(err)
	}

	set := f.app.Settings()
	set.Name, set.Slug, set.UpstreamURL = "Weather Pro", "weather-pro", "https://api.example.com/v1"
	set.AccessTokenTTLSeconds, set.RefreshTokenTTLSeconds = 600, 86400
	set.MeteringEnabled, set.CreditsPerCall, set.FreeCredits, set.RateLimitPerMinute, set.MCPEnabled = true, 3, 100, 10, true
	got, err := f.s.UpdateAppSettings(ctx, f.owner.ID, f.app.ID, set, f.now.Add(time.Minute))
	if err != nil {
		t.Fatalf("UpdateAppSettings() = %v", err)
	}
	if got.Settings() != set || !got.UpdatedAt.Equal(f.now.Add(time.Minute)) {
		t.Errorf("UpdateAppSettings() = %+v, want %+v", got.Settings(), set)
	}

	set.Slug = other.Slug
	if _, err := f.s.UpdateAppSettings(ctx, f.owner.ID, f.app.ID, set, f.now); !errors.Is(err, store.ErrConflict) {
		t.Errorf("UpdateAppSettings(taken slug) = %v, want ErrConflict", err)
	}
	set.Slug = "stolen"
	if _, err := f.s.UpdateAppSettings(ctx, f.intruder.ID, f.app.ID, set, f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateAppSettings(another owner) = %v, want ErrNotFound", err)
	}
	a, _ := f.s.AppByID(ctx, f.app.ID)
	if a.Slug != "weather-pro" {
		t.Errorf("slug after refused updates = %q, want weather-pro", a.Slug)
	}
}

func TestScopes_OwnerScopedAndBuiltinsStay(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	sc := store.Scope{Name: "forecast:read", Description: "Read forecasts", IsDefault: true}
	if err := f.s.CreateScope(ctx, f.intruder.ID, f.app.ID, sc, f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateScope(another owner) = %v, want ErrNotFound", err)
	}
	if err := f.s.CreateScope(ctx, f.owner.ID, f.app.ID, sc, f.now); err != nil {
		t.Fatalf("CreateScope() = %v", err)
	}
	if err := f.s.CreateScope(ctx, f.owner.ID, f.app.ID, sc, f.now); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateScope(duplicate) = %v, want ErrConflict", err)
	}
	if err := f.s.UpdateScope(ctx, f.owner.ID, f.app.ID, "forecast:read", "Read the forecast", false); err != nil {
		t.Fatalf("UpdateScope() = %v", err)
	}
	// A built-in keeps its description; its default flag may change.
	if err := f.s.UpdateScope(ctx, f.owner.ID, f.app.ID, "profile", "hacked", false); err != nil {
		t.Fatalf("UpdateScope(profile) = %v", err)
	}
	if err := f.s.UpdateScope(ctx, f.intruder.ID, f.app.ID, "forecast:read", "x", true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateScope(another owner) = %v, want ErrNotFound", err)
	}
	if err := f.s.DeleteScope(ctx, f.owner.ID, f.app.ID, "openid"); !errors.Is(err, store.ErrBuiltinScope) {
		t.Errorf("DeleteScope(openid) = %v, want ErrBuiltinScope", err)
	}
	if err := f.s.DeleteScope(ctx, f.intruder.ID, f.app.ID, "forecast:read"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteScope(another owner) = %v, want ErrNotFound", err)
	}
	scopes, _ := f.s.ScopesByApp(ctx, f.app.ID)
	want := []store.Scope{
		{AppID: f.app.ID, Name: "openid", Description: "Confirm who you are", Builtin: true, IsDefault: true},
		{AppID: f.app.ID, Name: "email", Description: "See your email address", Builtin: true, IsDefault: true},
		{AppID: f.app.ID, Name: "profile", Description: "See your basic profile", Builtin: true, IsDefault: false},
		{AppID: f.app.ID, Name: "forecast:read", Description: "Read the forecast", IsDefault: false},
	}
	if !slices.Equal(scopes, want) {
		t.Errorf("ScopesByApp() = %+v, want %+v", scopes, want)
	}
	if err := f.s.DeleteScope(ctx, f.owner.ID, f.app.ID, "forecast:read"); err != nil {
		t.Fatalf("DeleteScope() = %v", err)
	}
	if scopes, _ := f.s.ScopesByApp(ctx, f.app.ID); len(scopes) != 3 {
		t.Errorf("scopes after delete = %d, want the 3 built-ins", len(scopes))
	}
}

func TestRedirectURIs_AddRemoveAndLimitLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	first := f.client.RedirectURIs[0]
	c, added, err := f.s.AddRedirectURIs(ctx, f.owner.ID, f.app.ID, f.client.ID,
		[]string{first, "https://chat.openai.com/aip/g-1/oauth/callback"}, f.now)
	if err != nil {
		t.Fatalf("AddRedirectURIs() = %v", err)
	}
	if !slices.Equal(added, []string{"https://chat.openai.com/aip/g-1/oauth/callback"}) || len(c.RedirectURIs) != 2 {
		t.Errorf("AddRedirectURIs() added %v, client has %v; want only the new one added", added, c.RedirectURIs)
	}
	if _, _, err := f.s.AddRedirectURIs(ctx, f.intruder.ID, f.app.ID, f.client.ID, []string{"https://evil.example/cb"}, f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AddRedirectURIs(another owner) = %v, want ErrNotFound", err)
	}
	many := make([]string, store.MaxRedirectURIs)
	for i := range many {
		many[i] = "https://example.com/cb/" + string(rune('a'+i))
	}
	if _, _, err := f.s.AddRedirectURIs(ctx, f.owner.ID, f.app.ID, f.client.ID, many, f.now); !errors.Is(err, store.ErrTooManyRedirectURIs) {
		t.Errorf("AddRedirectURIs(over the limit) = %v, want ErrTooManyRedirectURIs", err)
	}
	got, _ := f.s.ClientByID(ctx, f.client.ID)
	if len(got.RedirectURIs) != 2 {
		t.Errorf("redirect URIs after the refused addition = %v, want the 2 from before", got.RedirectURIs)
	}
	if _, err := f.s.RemoveRedirectURI(ctx, f.intruder.ID, f.app.ID, f.client.ID, first, f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RemoveRedirectURI(another owner) = %v, want ErrNotFound", err)
	}
	if _, err := f.s.RemoveRedirectURI(ctx, f.owner.ID, f.app.ID, f.client.ID, "https://nope.example/cb", f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RemoveRedirectURI(unknown URI) = %v, want ErrNotFound", err)
	}
	c, err = f.s.RemoveRedirectURI(ctx, f.owner.ID, f.app.ID, f.client.ID, first, f.now)
	if err != nil || !slices.Equal(c.RedirectURIs, pq.StringArray{"https://chat.openai.com/aip/g-1/oauth/callback"}) {
		t.Errorf("RemoveRedirectURI() = %v, %v", c.RedirectURIs, err)
	}
}

func TestClients_RenameDeleteOwnerAndAppScoped(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	// A second app of the same owner: its ID with the first app's client is not found.
	other, _, err := f.s.CreateApp(ctx, store.NewApp{OwnerID: f.owner.ID, Name: "Other",
		Client: store.NewClient{ID: "agpt_other", Name: "c", Kind: store.ClientKindPublic}}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.ClientForApp(ctx, f.owner.ID, other.ID, f.client.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClientForApp(wrong app) = %v, want ErrNotFound", err)
	}
	if _, err := f.s.ClientForApp(ctx, f.intruder.ID, f.app.ID, f.client.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClientForApp(another owner) = %v, want ErrNotFound", err)
	}
	if _, err := f.s.RenameClient(ctx, f.intruder.ID, f.app.ID, f.client.ID, "mine", f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RenameClient(another owner) = %v, want ErrNotFound", err)
	}
	c, err := f.s.RenameClient(ctx, f.owner.ID, f.app.ID, f.client.ID, "Production GPT", f.now)
	if err != nil || c.Name != "Production GPT" {
		t.Errorf("RenameClient() = %q, %v", c.Name, err)
	}
	if err := f.s.DeleteClient(ctx, f.intruder.ID, f.app.ID, f.client.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteClient(another owner) = %v, want ErrNotFound", err)
	}
	if err := f.s.DeleteClient(ctx, f.owner.ID, f.app.ID, f.client.ID); err != nil {
		t.Fatalf("DeleteClient() = %v", err)
	}
	if _, err := f.s.ClientByID(ctx, f.client.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClientByID(deleted) = %v, want ErrNotFound", err)
	}
	if secrets, _ := f.s.ActiveSecrets(ctx, f.client.ID, f.now); len(secrets) != 0 {
		t.Errorf("secrets of the deleted client = %d, want 0", len(secrets))
	}
}

func TestDeleteApp_OwnerScopedAndCascades(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	if err := f.s.DeleteApp(ctx, f.intruder.ID, f.app.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteApp(another owner) = %v, want ErrNotFound", err)
	}
	if err := f.s.DeleteApp(ctx, f.owner.ID, f.app.ID); err != nil {
		t.Fatalf("DeleteApp() = %v", err)
	}
	if _, err := f.s.AppByID(ctx, f.app.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("AppByID(deleted) = %v", err)
	}
	if _, err := f.s.ClientByID(ctx, f.client.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("client of the deleted app: %v, want ErrNotFound", err)
	}
	if scopes, _ := f.s.ScopesByApp(ctx, f.app.ID); len(scopes) != 0 {
		t.Errorf("scopes of the deleted app = %d, want 0", len(scopes))
	}
}

func TestListApps_AllOrByOwner(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	if _, _, err := f.s.CreateApp(ctx, store.NewApp{OwnerID: f.intruder.ID, Name: "Theirs",
		Client: store.NewClient{ID: "agpt_theirs", Name: "c", Kind: store.ClientKindPublic}}, f.now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	all, err := f.s.ListApps(ctx, "")
	if err != nil || len(all) != 2 || all[0].OwnerEmail != "owner@example.com" || all[0].ClientCount != 1 {
		t.Fatalf("ListApps(\"\") = %+v, %v", all, err)
	}
	mine, _ := f.s.ListApps(ctx, "intruder@example.com")
	if len(mine) != 1 || mine[0].Slug != "theirs" {
		t.Errorf("ListApps(intruder) = %+v, want the one app", mine)
	}
	none, err := f.s.ListApps(ctx, "nobody@example.com")
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("ListApps(nobody) = %#v, %v; want an empty, non-nil list", none, err)
	}
}

// TestNotify_ChangesAnnouncedOnCommitOnly: caches on other instances hear about a client
// change only once it is committed, and never about a rolled-back one.
func TestNotify_ChangesAnnouncedOnCommitOnly(t *testing.T) {
	t.Parallel()
	dsn := storetest.NewDSN(t)
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	owner, _ := s.EnsureUser(ctx, "n@example.com")
	app, client, err := s.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "N",
		Client: store.NewClient{ID: "agpt_n", Name: "c", Kind: store.ClientKindGPT, SecretHash: []byte("h"), SecretHint: "…h"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l := pq.NewListener(dsn, time.Second, time.Minute, nil)
	defer l.Close()
	if err := l.Listen(store.ChannelClientChanged); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(store.ChannelAppChanged); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen("authgpts_revocations"); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	err = s.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.RenameClient(ctx, owner.ID, app.ID, client.ID, "rolled back", time.Now()); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx() = %v", err)
	}
	if _, err := s.RenameClient(ctx, owner.ID, app.ID, client.ID, "committed", time.Now()); err != nil {
		t.Fatal(err)
	}
	set := app.Settings()
	set.RateLimitPerMinute = 5
	if _, err := s.UpdateAppSettings(ctx, owner.ID, app.ID, set, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Deleting the client ends its tokens like a suspension does.
	if err := s.DeleteClient(ctx, owner.ID, app.ID, client.ID); err != nil {
		t.Fatal(err)
	}
	// Notifications arrive in commit order: the first is the committed rename (the
	// rolled-back one was never sent), then the app change, then the deletion.
	want := []struct{ channel, payload string }{
		{store.ChannelClientChanged, client.ID},
		{store.ChannelAppChanged, app.ID},
		{"authgpts_revocations", "client:" + client.ID},
		{store.ChannelClientChanged, client.ID},
	}
	for _, w := range want {
		select {
		case n := <-l.Notify:
			if n == nil || n.Channel != w.channel || n.Extra != w.payload {
				t.Fatalf("notification = %+v, want %s %s", n, w.channel, w.payload)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no notification on %s", w.channel)
		}
	}
}

package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
)

func TestSignInIdentity_SamePersonTwoSourcesIsTwoUsers(t *testing.T) {
	f := newPortalFixture(t)
	ctx := context.Background()
	emailUser, err := f.s.EnsureUser(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	google, created, err := f.s.SignInIdentity(ctx, "https://accounts.example.com", "1001", "ada@example.com", f.now)
	if err != nil || !created {
		t.Fatalf("SignInIdentity() = %v, created %v", err, created)
	}
	gh, _, err := f.s.SignInIdentity(ctx, store.IssuerGitHub, "1001", "", f.now)
	if err != nil {
		t.Fatal(err)
	}
	if google.ID == emailUser.ID || gh.ID == google.ID {
		t.Fatalf("identities share a user: email %s, oidc %s, github %s", emailUser.ID, google.ID, gh.ID)
	}
	again, created, err := f.s.SignInIdentity(ctx, "https://accounts.example.com", "1001", "", f.now.Add(time.Minute))
	if err != nil || created || again.ID != google.ID {
		t.Fatalf("second sign-in = %+v, created %v, err %v; want the same user", again, created, err)
	}
	if again.Email != "" {
		t.Errorf("email = %q after the upstream stopped vouching for it, want empty", again.Email)
	}
	if again.PublicSubject() != "1001" || emailUser.PublicSubject() != emailUser.ID {
		t.Errorf("PublicSubject() = %q / %q", again.PublicSubject(), emailUser.PublicSubject())
	}
	// Email lookups and admin promotion only ever name email-code accounts.
	byEmail, err := f.s.UserByEmail(ctx, "ada@example.com")
	if err != nil || byEmail.ID != emailUser.ID {
		t.Errorf("UserByEmail() = %s, %v; want the email-code account %s", byEmail.ID, err, emailUser.ID)
	}
}

func TestSaveIdentitySource_KeepsSecretAndNamesOwner(t *testing.T) {
	f := newPortalFixture(t)
	ctx := context.Background()
	src, err := f.s.IdentitySourceByApp(ctx, f.app.ID)
	if err != nil || src.Kind != store.SourceEmail {
		t.Fatalf("default source = %+v, %v; want email", src, err)
	}
	in := store.IdentitySource{AppID: f.app.ID, Kind: store.SourceOIDC, Issuer: "https://id.example.com", ClientID: "c1",
		ClientSecretSealed: []byte("sealed-1"), Scopes: "openid email"}
	if _, err := f.s.SaveIdentitySource(ctx, f.intruder.ID, in, f.now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SaveIdentitySource(intruder) = %v, want ErrNotFound", err)
	}
	if _, err := f.s.SaveIdentitySource(ctx, f.owner.ID, in, f.now); err != nil {
		t.Fatal(err)
	}
	in.ClientSecretSealed, in.ClientID = nil, "c2"
	got, err := f.s.SaveIdentitySource(ctx, f.owner.ID, in, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.ClientSecretSealed) != "sealed-1" || got.ClientID != "c2" {
		t.Errorf("after a save without a secret: secret %q, client %q; want the stored secret kept", got.ClientSecretSealed, got.ClientID)
	}
}

func TestUpstreamLogin_SingleUse(t *testing.T) {
	f := newPortalFixture(t)
	ctx := context.Background()
	n := store.NewUpstreamLogin{StateHash: []byte("state-hash"), BrowserHash: []byte("browser"), AppID: f.app.ID,
		Provider: store.SourceOIDC, ReturnTo: "/oauth/authorize?x=1", ExpiresAt: f.now.Add(10 * time.Minute)}
	if err := f.s.CreateUpstreamLogin(ctx, n, f.now); err != nil {
		t.Fatal(err)
	}
	l, err := f.s.ConsumeUpstreamLogin(ctx, n.StateHash, f.now)
	if err != nil || l.AppID != f.app.ID || string(l.BrowserHash) != "browser" {
		t.Fatalf("ConsumeUpstreamLogin() = %+v, %v", l, err)
	}
	if _, err := f.s.ConsumeUpstreamLogin(ctx, n.StateHash, f.now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second ConsumeUpstreamLogin() = %v, want ErrNotFound", err)
	}
	if err := f.s.UseOwnAssertion(ctx, f.app.ID, "jti-1", f.now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.UseOwnAssertion(ctx, f.app.ID, "jti-1", f.now.Add(time.Minute)); !errors.Is(err, store.ErrReplayed) {
		t.Errorf("replayed jti = %v, want ErrReplayed", err)
	}
}

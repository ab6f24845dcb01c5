package handlertest

import (
	"context"
	"testing"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// AppFixture is an app created for a test with its first client and clear secret.
type AppFixture struct {
	Owner  store.User
	App    store.App
	Client store.Client
	Secret string // empty for public clients
}

// Hasher returns the server's hasher for client secrets, codes and refresh tokens.
func (e *Env) Hasher() oauth.Hasher {
	return e.Instance.Derived.TokenHash
}

// NewApp creates an app owned by ownerEmail (created when missing) whose first client
// has the given kind and redirect URIs, exactly as the portal would.
func (e *Env) NewApp(t testing.TB, ownerEmail, kind string, redirectURIs ...string) AppFixture {
	t.Helper()
	ctx := context.Background()
	owner, err := e.Store.EnsureUser(ctx, ownerEmail)
	if err != nil {
		t.Fatalf("NewApp: owner: %v", err)
	}
	nc := store.NewClient{ID: oauth.NewClientID(), Name: "Test client", Kind: kind, RedirectURIs: redirectURIs, Origin: store.ClientOriginCLI}
	var secret string
	if kind != store.ClientKindPublic {
		secret = oauth.NewToken(oauth.PrefixClientSecret)
		nc.SecretHash, nc.SecretHint = e.Hasher().Hash(secret), oauth.SecretHint(secret)
	}
	app, client, err := e.Store.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "Test app " + randomHex(3), Client: nc}, e.Clock.Now())
	if err != nil {
		t.Fatalf("NewApp: %v", err)
	}
	return AppFixture{Owner: owner, App: app, Client: client, Secret: secret}
}

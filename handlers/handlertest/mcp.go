package handlertest

import (
	"context"
	"testing"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// NewMCPApp creates an app open to MCP clients, as `authgpts app create --mcp` does,
// with the given upstream URL (may be empty) and a first confidential client (a GPT
// action client with its secret, usable for introspection).
func (e *Env) NewMCPApp(t testing.TB, ownerEmail, upstream string) AppFixture {
	t.Helper()
	ctx := context.Background()
	owner, err := e.Store.EnsureUser(ctx, ownerEmail)
	if err != nil {
		t.Fatalf("NewMCPApp: owner: %v", err)
	}
	secret := oauth.NewToken(oauth.PrefixClientSecret)
	nc := store.NewClient{ID: oauth.NewClientID(), Name: "Test client", Kind: store.ClientKindGPT, Origin: store.ClientOriginCLI,
		RedirectURIs: []string{"https://chatgpt.com/aip/g-0123456789abcdef/oauth/callback"},
		SecretHash:   e.Hasher().Hash(secret), SecretHint: oauth.SecretHint(secret)}
	app, client, err := e.Store.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "MCP app " + randomHex(3),
		UpstreamURL: upstream, MCPEnabled: true, Client: nc}, e.Clock.Now())
	if err != nil {
		t.Fatalf("NewMCPApp: %v", err)
	}
	return AppFixture{Owner: owner, App: app, Client: client, Secret: secret}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

const cliSecret = "cli-test-secret-cli-test-secret-0123456789"

func cliEnv(dsn string) func(string) string {
	return env(map[string]string{"DATABASE_URL": dsn, "AUTHGPTS_SECRET": cliSecret})
}

func runCLI(t *testing.T, dsn string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, cliEnv(dsn), &out, &errOut)
	return out.String(), err
}

func TestAppCreate_PrintsExactlyTheContractKeysAndStoresTheApp(t *testing.T) {
	dsn := storetest.NewDSN(t)
	out, err := runCLI(t, dsn, "app", "create", "--owner", "New.Dev@Example.com", "--name", "Weather API",
		"--redirect-uri", "https://chatgpt.com/aip/g-1/oauth/callback", "--redirect-uri", "https://chat.openai.com/aip/g-1/oauth/callback",
		"--scope", "forecast:read", "--scope", "openid", "--upstream", "https://api.example.com", "--mcp")
	if err != nil {
		t.Fatalf("app create: %v", err)
	}
	var raw map[string]string
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("output %q is not a JSON object of strings: %v", out, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"authorization_url", "client_id", "client_secret", "gateway_url", "slug", "token_url"}; !slices.Equal(keys, want) {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
	want := map[string]string{
		"slug":              "weather-api",
		"authorization_url": "http://localhost:8080/oauth/authorize",
		"token_url":         "http://localhost:8080/oauth/token",
		"gateway_url":       "http://localhost:8080/gw/weather-api",
	}
	for k, v := range want {
		if raw[k] != v {
			t.Errorf("%s = %q, want %q", k, raw[k], v)
		}
	}

	st := openStore(t, dsn)
	ctx := context.Background()
	owner, err := st.UserByEmail(ctx, "new.dev@example.com")
	if err != nil {
		t.Fatalf("the owner was not created: %v", err)
	}
	app, err := st.AppBySlugForOwner(ctx, owner.ID, "weather-api")
	if err != nil || !app.MCPEnabled || app.UpstreamURL != "https://api.example.com" {
		t.Fatalf("app = %+v, %v", app, err)
	}
	client, err := st.ClientByID(ctx, raw["client_id"])
	if err != nil || client.Kind != store.ClientKindGPT || client.Origin != store.ClientOriginCLI || len(client.RedirectURIs) != 2 {
		t.Fatalf("client = %+v, %v", client, err)
	}
	// The printed secret works with the token endpoint's hasher.
	hasher := oauth.DeriveKeys([]byte(cliSecret)).TokenHash
	secrets, _ := st.ActiveSecrets(ctx, client.ID, time.Now())
	if len(secrets) != 1 || !hasher.Equal(raw["client_secret"], secrets[0].Hash) {
		t.Errorf("stored secret does not match the printed one (%d secrets)", len(secrets))
	}
	scopes, _ := st.ScopesByApp(ctx, app.ID)
	var names []string
	for _, s := range scopes {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"openid", "email", "profile", "forecast:read"}) {
		t.Errorf("scopes = %v", names)
	}
	audit, _ := st.RecentAudit(ctx, 10)
	if len(audit) != 1 || audit[0].Action != "app.created" || strings.Contains(string(audit[0].Details), raw["client_secret"]) {
		t.Errorf("audit = %+v, want one app.created without the secret", audit)
	}

	// The owner exists now: a second app reuses the account; its slug gets a suffix.
	out, err = runCLI(t, dsn, "app", "create", "--owner", "new.dev@example.com", "--name", "Weather API", "--kind", "public")
	if err != nil {
		t.Fatal(err)
	}
	var pub map[string]any
	_ = json.Unmarshal([]byte(out), &pub)
	if _, has := pub["client_secret"]; has || pub["slug"] != "weather-api-2" {
		t.Errorf("public app output = %v, want no client_secret and slug weather-api-2", pub)
	}
}

func TestAppCreate_InvalidArgumentsWriteNothing(t *testing.T) {
	dsn := storetest.NewDSN(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no owner", []string{"--name", "X"}, "--owner"},
		{"no name", []string{"--owner", "a@example.com"}, "--name"},
		{"bad kind", []string{"--owner", "a@example.com", "--name", "X", "--kind", "admin"}, "--kind"},
		{"http redirect", []string{"--owner", "a@example.com", "--name", "X", "--redirect-uri", "http://evil.example/cb"}, "https"},
		{"service with redirect", []string{"--owner", "a@example.com", "--name", "X", "--kind", "service", "--redirect-uri", "https://a.example/cb"}, "service client"},
		{"bad scope", []string{"--owner", "a@example.com", "--name", "X", "--scope", "two words"}, "--scope"},
		{"http upstream", []string{"--owner", "a@example.com", "--name", "X", "--upstream", "http://api.example.com"}, "--upstream"},
		{"unknown flag", []string{"--owner", "a@example.com", "--name", "X", "--secret", "s"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, dsn, append([]string{"app", "create"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
				t.Errorf("app create %v = %v (output %q), want an error about %q", tt.args, err, out, tt.want)
			}
		})
	}
	out, err := runCLI(t, dsn, "app", "list")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("app list after refused creations = %q, %v; want []", out, err)
	}
}

func TestAppList_AllAndByOwner(t *testing.T) {
	dsn := storetest.NewDSN(t)
	for _, a := range [][]string{{"a@example.com", "Alpha"}, {"b@example.com", "Beta"}} {
		if _, err := runCLI(t, dsn, "app", "create", "--owner", a[0], "--name", a[1]); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runCLI(t, dsn, "app", "list")
	if err != nil {
		t.Fatal(err)
	}
	var all []appJSON
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 2 || all[0].Slug != "alpha" || all[0].Owner != "a@example.com" || len(all[0].Clients) != 1 || all[0].Clients[0].Kind != "gpt" {
		t.Fatalf("app list = %s (%v)", out, err)
	}
	if all[1].GatewayURL != "http://localhost:8080/gw/beta" {
		t.Errorf("gateway_url = %q", all[1].GatewayURL)
	}
	out, _ = runCLI(t, dsn, "app", "list", "--owner", "B@example.com")
	var mine []appJSON
	if err := json.Unmarshal([]byte(out), &mine); err != nil || len(mine) != 1 || mine[0].Name != "Beta" {
		t.Errorf("app list --owner b = %s", out)
	}
	if _, err := runCLI(t, dsn, "app", "frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown app command") {
		t.Errorf("app frobnicate = %v", err)
	}
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

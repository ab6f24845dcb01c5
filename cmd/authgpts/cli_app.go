package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authgpts/authgpts/handlers/portal"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

const appUsage = `usage:
  authgpts app create --owner EMAIL --name NAME [--redirect-uri URI]... [--scope S]...
                      [--upstream URL] [--kind gpt|public|service] [--mcp]
  authgpts app list [--owner EMAIL]`

// appCommand handles `authgpts app create|list`; both print JSON for scripts.
func appCommand(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, appUsage)
	}
	switch args[0] {
	case "create":
		return appCreate(ctx, cfg, args[1:], out)
	case "list":
		return appList(ctx, cfg, args[1:], out)
	}
	return fmt.Errorf("%w: unknown app command %q\n%s", errUsage, args[0], appUsage)
}

// multiFlag collects a flag that may be repeated.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// createdAppJSON is what `app create` prints: exactly these keys (client_secret only
// for confidential clients).
type createdAppJSON struct {
	Slug             string `json:"slug"`
	ClientID         string `json:"client_id"`
	ClientSecret     string `json:"client_secret,omitempty"`
	AuthorizationURL string `json:"authorization_url"`
	TokenURL         string `json:"token_url"`
	GatewayURL       string `json:"gateway_url"`
}

type appCreateArgs struct {
	owner, name, upstream, kind string
	mcp                         bool
	redirectURIs, scopes        multiFlag
}

func parseAppCreate(args []string, devMode bool) (appCreateArgs, error) {
	var a appCreateArgs
	fs := flag.NewFlagSet("app create", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.owner, "owner", "", "owner's email (created when missing)")
	fs.StringVar(&a.name, "name", "", "app name")
	fs.StringVar(&a.upstream, "upstream", "", "upstream base URL")
	fs.StringVar(&a.kind, "kind", store.ClientKindGPT, "first client's kind: gpt, public or service")
	fs.BoolVar(&a.mcp, "mcp", false, "open the app to MCP clients")
	fs.Var(&a.redirectURIs, "redirect-uri", "redirect URI (repeatable)")
	fs.Var(&a.scopes, "scope", "custom scope (repeatable)")
	if err := fs.Parse(args); err != nil {
		return a, fmt.Errorf("%w: %v\n%s", errUsage, err, appUsage)
	}
	if fs.NArg() > 0 {
		return a, fmt.Errorf("%w: unexpected argument %q\n%s", errUsage, fs.Arg(0), appUsage)
	}
	var problems []string
	email, ok := store.NormalizeEmail(a.owner)
	if !ok {
		problems = append(problems, "--owner must be an email address")
	}
	a.owner = email
	a.name = strings.TrimSpace(a.name)
	if a.name == "" || utf8.RuneCountInString(a.name) > 100 {
		problems = append(problems, "--name is required (at most 100 characters)")
	}
	if !slices.Contains([]string{store.ClientKindGPT, store.ClientKindPublic, store.ClientKindService}, a.kind) {
		problems = append(problems, "--kind must be gpt, public or service")
	}
	if a.kind == store.ClientKindService && len(a.redirectURIs) > 0 {
		problems = append(problems, "a service client has no redirect URIs")
	}
	for _, u := range a.redirectURIs {
		if err := oauth.ValidateRedirectURI(u); err != nil {
			var oe oauth.Error
			errors.As(err, &oe)
			problems = append(problems, fmt.Sprintf("--redirect-uri %q: %s", u, oe.Description))
		}
	}
	for _, s := range a.scopes {
		if len(s) > 64 || !oauth.IsScopeToken(s) {
			problems = append(problems, fmt.Sprintf("--scope %q is not a scope token (RFC 6749 §3.3: printable ASCII without spaces, quotes or backslashes, at most 64)", s))
		}
	}
	if a.upstream != "" {
		if msg := portal.CheckUpstreamURL(a.upstream, devMode); msg != "" {
			problems = append(problems, "--upstream: "+msg)
		}
	}
	if len(problems) > 0 {
		return a, fmt.Errorf("app create:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return a, nil
}

func appCreate(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	a, err := parseAppCreate(args, cfg.DevMode)
	if err != nil {
		return err
	}
	st, err := openAndMigrate(ctx, cfg, io.Discard)
	if err != nil {
		return err
	}
	defer st.Close()

	// The same hasher as the token endpoint, so the printed secret works there.
	hasher := oauth.DeriveKeys(cfg.Secret).TokenHash
	nc, secret := portal.NewCredentials(hasher, a.kind)
	nc.Name, nc.Origin, nc.RedirectURIs = clientName(a.kind), store.ClientOriginCLI, a.redirectURIs
	var extra []store.Scope
	for _, s := range a.scopes {
		known := slices.ContainsFunc(store.BuiltinScopes, func(b store.Scope) bool { return b.Name == s }) ||
			slices.ContainsFunc(extra, func(b store.Scope) bool { return b.Name == s })
		if !known {
			extra = append(extra, store.Scope{Name: s, IsDefault: true})
		}
	}
	now := time.Now()
	var app store.App
	err = st.InTx(ctx, func(tx *store.Tx) error {
		owner, err := tx.EnsureUser(ctx, a.owner)
		if err != nil {
			return err
		}
		var client store.Client
		app, client, err = tx.CreateApp(ctx, store.NewApp{
			OwnerID: owner.ID, Name: a.name, UpstreamURL: a.upstream, MCPEnabled: a.mcp,
			ExtraScopes: extra, Client: nc,
		}, now)
		if err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]any{"slug": app.Slug, "name": app.Name, "client_id": client.ID, "owner": owner.Email})
		return tx.Audit(ctx, store.AuditEntry{At: now, ActorEmail: "cli", Action: "app.created", TargetType: "app", TargetID: app.ID, Details: details})
	})
	if err != nil {
		return fmt.Errorf("app create: %w", err)
	}
	urls := portal.URLsFor(cfg.BaseURL.String(), app)
	return writeJSON(out, createdAppJSON{
		Slug: app.Slug, ClientID: nc.ID, ClientSecret: secret,
		AuthorizationURL: urls.AuthorizationURL, TokenURL: urls.TokenURL, GatewayURL: urls.GatewayURL,
	})
}

func clientName(kind string) string {
	switch kind {
	case store.ClientKindPublic:
		return "MCP client"
	case store.ClientKindService:
		return "Service"
	}
	return "GPT action"
}

// appJSON is one app of `app list`.
type appJSON struct {
	Slug        string       `json:"slug"`
	Name        string       `json:"name"`
	Owner       string       `json:"owner"`
	GatewayURL  string       `json:"gateway_url"`
	UpstreamURL string       `json:"upstream_url"`
	MCPEnabled  bool         `json:"mcp_enabled"`
	Suspended   bool         `json:"suspended"`
	CreatedAt   time.Time    `json:"created_at"`
	Clients     []clientJSON `json:"clients"`
}

type clientJSON struct {
	ClientID     string   `json:"client_id"`
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	RedirectURIs []string `json:"redirect_uris"`
}

func appList(ctx context.Context, cfg Config, args []string, out io.Writer) error {
	var owner string
	fs := flag.NewFlagSet("app list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&owner, "owner", "", "only this owner's apps")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("%w: %s", errUsage, appUsage)
	}
	if owner != "" {
		norm, ok := store.NormalizeEmail(owner)
		if !ok {
			return fmt.Errorf("--owner %q is not an email address", owner)
		}
		owner = norm
	}
	st, err := openAndMigrate(ctx, cfg, io.Discard)
	if err != nil {
		return err
	}
	defer st.Close()
	apps, err := st.ListApps(ctx, owner)
	if err != nil {
		return err
	}
	list := make([]appJSON, 0, len(apps))
	for _, a := range apps {
		clients, err := st.ClientsByApp(ctx, a.ID)
		if err != nil {
			return err
		}
		cj := make([]clientJSON, 0, len(clients))
		for _, c := range clients {
			cj = append(cj, clientJSON{ClientID: c.ID, Name: c.Name, Kind: c.Kind, RedirectURIs: append([]string{}, c.RedirectURIs...)})
		}
		list = append(list, appJSON{
			Slug: a.Slug, Name: a.Name, Owner: a.OwnerEmail, GatewayURL: portal.URLsFor(cfg.BaseURL.String(), a.App).GatewayURL,
			UpstreamURL: a.UpstreamURL, MCPEnabled: a.MCPEnabled, Suspended: a.IsSuspended(), CreatedAt: a.CreatedAt.UTC(), Clients: cj,
		})
	}
	return writeJSON(out, list)
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

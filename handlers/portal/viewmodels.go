package portal

import (
	"context"
	"strconv"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

// Endpoints the OAuth server serves, relative to the base URL (DESIGN.md, "Contract").
const (
	authorizePath = "/oauth/authorize"
	tokenPath     = "/oauth/token"
)

// SetupURLs are the absolute URLs a client of an app is configured with.
type SetupURLs struct {
	AuthorizationURL string
	TokenURL         string
	GatewayURL       string // the app's resource URL, <base>/gw/<slug>
	MCPURL           string // <gateway>/mcp when the app is open to MCP clients
}

// URLsFor returns the URLs for an app under the base URL.
func URLsFor(baseURL string, a store.App) SetupURLs {
	u := SetupURLs{
		AuthorizationURL: baseURL + authorizePath,
		TokenURL:         baseURL + tokenPath,
		GatewayURL:       baseURL + a.ResourcePath(),
	}
	if a.MCPEnabled {
		u.MCPURL = u.GatewayURL + "/mcp"
	}
	return u
}

// DefaultScope is the scope string of the app's default scopes, space-separated
// (RFC 6749 §3.3): what the GPT editor's Scope field should hold.
func DefaultScope(scopes []store.Scope) string {
	var names []string
	for _, s := range scopes {
		if s.IsDefault {
			names = append(names, s.Name)
		}
	}
	return oauth.FormatScope(names)
}

func (h *Handler) setupValues(prefix string, a store.App, cl store.Client, scopes []store.Scope, secret, hint string) view.SetupValuesVM {
	urls := URLsFor(h.BaseURL, a)
	return view.SetupValuesVM{
		IDPrefix:         prefix,
		Kind:             cl.Kind,
		ClientID:         cl.ID,
		ClientSecret:     secret,
		SecretHint:       hint,
		AuthorizationURL: urls.AuthorizationURL,
		TokenURL:         urls.TokenURL,
		Scope:            DefaultScope(scopes),
		ServerURL:        urls.GatewayURL,
		MCPURL:           urls.MCPURL,
		ClientURL:        ClientURL(a.Slug, cl.ID),
	}
}

func appHeaderVM(a store.App, urls SetupURLs) view.AppHeaderVM {
	return view.AppHeaderVM{
		Name: a.Name, Slug: a.Slug, GatewayURL: urls.GatewayURL, MCPURL: urls.MCPURL,
		CreatedAt: a.CreatedAt, Suspended: a.IsSuspended(), SuspendedReason: a.SuspendedReason,
		Metering: a.MeteringEnabled,
	}
}

func settingsVM(a store.App, devMode bool) view.SettingsVM {
	return view.SettingsVM{
		AppURL:           AppURL(a.Slug),
		Name:             a.Name,
		Slug:             a.Slug,
		UpstreamURL:      a.UpstreamURL,
		AccessTTLMinutes: strconv.Itoa(a.AccessTokenTTLSeconds / 60),
		RefreshTTLDays:   strconv.Itoa(max(1, a.RefreshTokenTTLSeconds/86400)),
		MeteringEnabled:  a.MeteringEnabled,
		CreditsPerCall:   strconv.FormatInt(a.CreditsPerCall, 10),
		FreeCredits:      strconv.FormatInt(a.FreeCredits, 10),
		RateLimit:        strconv.Itoa(a.RateLimitPerMinute),
		MCPEnabled:       a.MCPEnabled,
		DevMode:          devMode,
	}
}

func scopeListVM(a store.App, scopes []store.Scope) view.ScopeListVM {
	rows := make([]view.ScopeRow, 0, len(scopes))
	for _, s := range scopes {
		rows = append(rows, view.ScopeRow{Name: s.Name, Description: s.Description, Builtin: s.Builtin, IsDefault: s.IsDefault})
	}
	return view.ScopeListVM{AppURL: AppURL(a.Slug), Scopes: rows, Form: view.NewScopeFormVM{IsDefault: true}}
}

func clientListVM(a store.App, clients []store.Client) view.ClientListVM {
	rows := make([]view.ClientRow, 0, len(clients))
	for _, cl := range clients {
		rows = append(rows, view.ClientRow{
			ID: cl.ID, Name: cl.Name, Kind: cl.Kind, URL: ClientURL(a.Slug, cl.ID), Origin: cl.Origin,
			RedirectCount: len(cl.RedirectURIs), CreatedAt: cl.CreatedAt, LastUsedAt: cl.LastUsedAt,
			Suspended: cl.IsSuspended(),
		})
	}
	return view.ClientListVM{AppURL: AppURL(a.Slug), Clients: rows, Form: view.NewClientFormVM{Kind: store.ClientKindGPT}}
}

// connectPanelVM shows the first GPT-action client of the app, with its secret hint.
func (h *Handler) connectPanelVM(ctx context.Context, a store.App, clients []store.Client, scopes []store.Scope) (view.ConnectPanelVM, error) {
	vm := view.ConnectPanelVM{AppURL: AppURL(a.Slug)}
	prices, err := PriceList(ctx, h.Store, a)
	if err != nil {
		return vm, err
	}
	vm.Prices = prices
	for _, cl := range clients {
		if cl.Kind != store.ClientKindGPT {
			continue
		}
		secrets, err := h.Store.ActiveSecrets(ctx, cl.ID, h.Now())
		if err != nil {
			return vm, err
		}
		hint := ""
		if len(secrets) > 0 {
			hint = secrets[0].Hint
		}
		v := h.setupValues("connect", a, cl, scopes, "", hint)
		vm.Values = &v
		break
	}
	return vm, nil
}

// appPageData is everything an app page shows, loaded once.
type appPageData struct {
	scopes  []store.Scope
	clients []store.Client
}

func (h *Handler) loadAppPageData(ctx context.Context, a store.App) (appPageData, error) {
	var d appPageData
	var err error
	if d.scopes, err = h.Store.ScopesByApp(ctx, a.ID); err != nil {
		return d, err
	}
	d.clients, err = h.Store.ClientsByApp(ctx, a.ID)
	return d, err
}

func (h *Handler) appPageVM(ctx context.Context, u store.User, a store.App) (view.AppPageVM, error) {
	d, err := h.loadAppPageData(ctx, a)
	if err != nil {
		return view.AppPageVM{}, err
	}
	connect, err := h.connectPanelVM(ctx, a, d.clients, d.scopes)
	if err != nil {
		return view.AppPageVM{}, err
	}
	mcp, err := h.mcpPanelVM(ctx, u, a)
	if err != nil {
		return view.AppPageVM{}, err
	}
	prices, err := h.pricesVM(ctx, a)
	if err != nil {
		return view.AppPageVM{}, err
	}
	keys, err := h.apiKeysVM(ctx, a, d.scopes)
	if err != nil {
		return view.AppPageVM{}, err
	}
	conns, err := h.connectionListVM(ctx, a, view.NewConnectionFormVM{})
	if err != nil {
		return view.AppPageVM{}, err
	}
	webhooks, err := h.webhooksPanelVM(ctx, a)
	if err != nil {
		return view.AppPageVM{}, err
	}
	src, err := h.Store.IdentitySourceByApp(ctx, a.ID)
	if err != nil {
		return view.AppPageVM{}, err
	}
	return view.AppPageVM{
		Chrome:      chrome(u, a.Name),
		Header:      appHeaderVM(a, URLsFor(h.BaseURL, a)),
		Connect:     connect,
		MCP:         mcp,
		Webhooks:    webhooks,
		Connections: conns,
		Clients:     clientListVM(a, d.clients),
		Scopes:      scopeListVM(a, d.scopes),
		Identity:    h.identityVM(a, src),
		Prices:      prices,
		Keys:        keys,
		Settings:    settingsVM(a, h.DevMode),
		Danger:      view.DangerVM{AppURL: AppURL(a.Slug), Slug: a.Slug},
	}, nil
}

func clientNameVM(a store.App, cl store.Client) view.ClientNameVM {
	return view.ClientNameVM{
		URL: ClientURL(a.Slug, cl.ID), Name: cl.Name, ID: cl.ID, Kind: cl.Kind, Origin: cl.Origin,
		CreatedAt: cl.CreatedAt, LastUsedAt: cl.LastUsedAt, Suspended: cl.IsSuspended(), Input: cl.Name,
	}
}

func redirectURIsVM(a store.App, cl store.Client) view.RedirectURIsVM {
	return view.RedirectURIsVM{URL: ClientURL(a.Slug, cl.ID), URIs: cl.RedirectURIs}
}

func secretRows(secrets []store.ClientSecret) []view.SecretRow {
	rows := make([]view.SecretRow, 0, len(secrets))
	for _, s := range secrets {
		rows = append(rows, view.SecretRow{Hint: s.Hint, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt})
	}
	return rows
}

func (h *Handler) clientPageVM(ctx context.Context, u store.User, a store.App, cl store.Client) (view.ClientPageVM, error) {
	scopes, err := h.Store.ScopesByApp(ctx, a.ID)
	if err != nil {
		return view.ClientPageVM{}, err
	}
	vm := view.ClientPageVM{
		Chrome:  chrome(u, cl.Name+" · "+a.Name),
		AppName: a.Name,
		AppURL:  AppURL(a.Slug),
		Name:    clientNameVM(a, cl),
		// The secret section below lists the hints; no link back to it from here.
		Values: h.setupValues("client", a, cl, scopes, "", ""),
		Danger: view.ClientDangerVM{URL: ClientURL(a.Slug, cl.ID), Name: cl.Name},
	}
	vm.Values.ClientURL = ""
	if cl.Kind != store.ClientKindService {
		r := redirectURIsVM(a, cl)
		vm.Redirects = &r
	}
	if cl.IsConfidential() {
		secrets, err := h.Store.ActiveSecrets(ctx, cl.ID, h.Now())
		if err != nil {
			return vm, err
		}
		vm.Secret = &view.ClientSecretVM{URL: ClientURL(a.Slug, cl.ID), Secrets: secretRows(secrets)}
	}
	return vm, nil
}

// overlaps are the rotation windows a developer may choose (DESIGN.md, journey 2).
var overlaps = map[string]time.Duration{"0": 0, "1h": time.Hour, "24h": 24 * time.Hour}

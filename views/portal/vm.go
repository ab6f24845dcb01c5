// Package portal holds the developer portal's pages and the HTMX partials they are built
// from. Each swappable region is its own exported component with a stable id (the page
// composes it and the HTMX endpoint returns exactly it); view models are plain structs
// the handlers fill in.
package portal

import (
	"strconv"
	"time"

	"github.com/authgpts/authgpts/views/components"
	"github.com/authgpts/authgpts/views/layout"
)

// Element ids of the swappable regions (STYLE.md §4): handlers, pages and tests share them.
const (
	IDNewAppForm   = "new-app-form"
	IDAppHeader    = "app-header"
	IDConnectPanel = "connect-panel"
	IDClientList   = "client-list"
	IDScopeList    = "scope-list"
	IDAppSettings  = "app-settings"
	IDDangerZone   = "danger-zone"
	IDClientName   = "client-name"
	IDRedirectURIs = "redirect-uris"
	IDClientSecret = "client-secret"
)

// Client kinds as the store names them.
const (
	KindGPT     = "gpt"
	KindPublic  = "public"
	KindService = "service"
)

// TokenExchangeMethod is the GPT editor's choice that matches client_secret_post; the
// other one, "Basic authorization header", works as well.
const TokenExchangeMethod = "Default (POST request)"

// Errors maps a form field name to the message shown next to it.
type Errors map[string]string

// AppRow is one app in the dashboard list.
type AppRow struct {
	Name        string
	Slug        string
	URL         string
	ClientCount int
	CreatedAt   time.Time
	Suspended   bool
	MCP         bool
}

// DashboardVM is the developer's home page: their apps and the "New app" form.
type DashboardVM struct {
	Chrome layout.Chrome
	Apps   []AppRow
	Form   NewAppFormVM
}

// NewAppFormVM is the "New app" form with what was typed and its errors.
type NewAppFormVM struct {
	Name        string
	CallbackURL string
	Errors      Errors
}

// SetupValuesVM is what a client needs on the other side: for a GPT action, every value
// the GPT editor asks for.
type SetupValuesVM struct {
	IDPrefix         string // keeps element ids unique on a page
	Kind             string
	ClientID         string
	ClientSecret     string // only right after creation or rotation; never stored
	SecretHint       string // otherwise: the end of the current secret
	AuthorizationURL string
	TokenURL         string
	Scope            string
	ServerURL        string // the gateway URL for the OpenAPI servers entry
	MCPURL           string // set when the app is open to MCP clients
	ClientURL        string // the client's page, for "manage" links
}

// SetupPageVM is the page shown once after an app is created.
type SetupPageVM struct {
	Chrome       layout.Chrome
	AppName      string
	AppURL       string
	ClientURL    string
	Values       SetupValuesVM
	CallbackURIs []string
	Prices       *components.PriceListProps // nil when the app is not metered
}

// AppHeaderVM is the title block of an app page.
type AppHeaderVM struct {
	Name            string
	Slug            string
	GatewayURL      string
	MCPURL          string // empty when MCP is off
	CreatedAt       time.Time
	Suspended       bool
	SuspendedReason string
	Metering        bool
}

// AppPageVM is an app's page: connection values, clients, scopes, settings, danger zone.
type AppPageVM struct {
	Chrome   layout.Chrome
	Header   AppHeaderVM
	Connect  ConnectPanelVM
	MCP      MCPPanelVM
	Webhooks WebhooksPanelVM
	Clients  ClientListVM
	Scopes   ScopeListVM
	Identity IdentitySourceVM
	Prices   PricesVM
	Keys     APIKeysVM
	Settings SettingsVM
	Danger   DangerVM
	// Connections is the "Connections" section.
	Connections ConnectionListVM
}

// ConnectPanelVM shows the GPT editor values of the app's first GPT-action client.
type ConnectPanelVM struct {
	AppURL string
	Values *SetupValuesVM             // nil: the app has no GPT-action client
	Prices *components.PriceListProps // nil when the app is not metered
}

// ClientRow is one client in an app's client list.
type ClientRow struct {
	ID            string
	Name          string
	Kind          string
	URL           string
	Origin        string
	RedirectCount int
	SecretHint    string
	CreatedAt     time.Time
	LastUsedAt    *time.Time
	Suspended     bool
}

// NewClientFormVM is the "Add client" form.
type NewClientFormVM struct {
	Name   string
	Kind   string
	Errors Errors
}

// CreatedClientVM is shown once, right after a client is added: its secret is never
// shown again.
type CreatedClientVM struct {
	Name     string
	ClientID string
	Secret   string
	Kind     string
	URL      string
}

// ClientListVM is the clients region of an app page.
type ClientListVM struct {
	AppURL  string
	Clients []ClientRow
	Form    NewClientFormVM
	Created *CreatedClientVM
}

// ScopeRow is one scope of an app.
type ScopeRow struct {
	Name        string
	Description string
	Builtin     bool
	IsDefault   bool
	Error       string // a failed edit of this row
}

// NewScopeFormVM is the "Add scope" form.
type NewScopeFormVM struct {
	Name        string
	Description string
	IsDefault   bool
	Errors      Errors
}

// ScopeListVM is the scopes region of an app page.
type ScopeListVM struct {
	AppURL string
	Scopes []ScopeRow
	Form   NewScopeFormVM
}

// SettingsVM is the settings form, as strings so that what was typed comes back.
type SettingsVM struct {
	AppURL           string
	Name             string
	Slug             string
	UpstreamURL      string
	AccessTTLMinutes string
	RefreshTTLDays   string
	MeteringEnabled  bool
	CreditsPerCall   string
	FreeCredits      string
	RateLimit        string
	MCPEnabled       bool
	DevMode          bool
	Errors           Errors
	Saved            bool
}

// DangerVM is the "delete this app" form.
type DangerVM struct {
	AppURL  string
	Slug    string
	Confirm string
	Error   string
}

// ClientPageVM is one client's page.
type ClientPageVM struct {
	Chrome    layout.Chrome
	AppName   string
	AppURL    string
	Name      ClientNameVM
	Values    SetupValuesVM
	Redirects *RedirectURIsVM // nil for service clients
	Secret    *ClientSecretVM // nil for public clients
	Danger    ClientDangerVM
}

// ClientNameVM is the client's title block with its rename form.
type ClientNameVM struct {
	URL        string
	Name       string
	ID         string
	Kind       string
	Origin     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	Suspended  bool
	Input      string
	Error      string
	Editing    bool
}

// RedirectURIsVM is a client's redirect URI list with its add forms.
type RedirectURIsVM struct {
	URL        string
	URIs       []string
	Added      []string // highlighted: just added
	Input      string
	InputError string
	GPTID      string
	GPTError   string
	Connector  string
	ConnError  string
	Notice     string
	Error      string // a refusal that concerns the whole list (too many URIs)
}

// SecretRow is one secret that still works.
type SecretRow struct {
	Hint      string
	CreatedAt time.Time
	ExpiresAt *time.Time
}

// ClientSecretVM is a client's secrets with the rotation form.
type ClientSecretVM struct {
	URL        string
	Secrets    []SecretRow
	NewSecret  string     // shown once, right after a rotation
	OldUntil   *time.Time // the previous secret works until then
	OldStopped bool       // the previous secret stopped at once
	Overlap    string
	Error      string
}

// ClientDangerVM is the "delete this client" form.
type ClientDangerVM struct {
	URL  string
	Name string
}

// KindLabel is a client kind as people read it.
func KindLabel(kind string) string {
	switch kind {
	case KindGPT:
		return "GPT action"
	case KindPublic:
		return "Public / MCP"
	case KindService:
		return "Service"
	}
	return kind
}

func kindBadge(kind string) string {
	base := "inline-flex items-center rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset "
	switch kind {
	case KindGPT:
		return base + "bg-emerald-50 text-emerald-700 ring-emerald-600/20"
	case KindPublic:
		return base + "bg-violet-50 text-violet-700 ring-violet-600/20"
	default:
		return base + "bg-slate-100 text-slate-700 ring-slate-500/20"
	}
}

func originLabel(origin string) string {
	switch origin {
	case "registration":
		return "Dynamic registration"
	case "metadata_document":
		return "Metadata document"
	case "cli":
		return "CLI"
	}
	return "Portal"
}

// Date formats a day for lists.
func Date(t time.Time) string { return t.UTC().Format("2 Jan 2006") }

// DateTime formats an instant, always in UTC so every viewer reads the same time.
func DateTime(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") }

func isoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func itoa(n int) string { return strconv.Itoa(n) }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Shared Tailwind class strings for controls the components package does not cover.
const (
	inputBase   = "block w-full rounded-lg border bg-white px-3 py-2 text-sm shadow-sm placeholder:text-slate-400 focus:outline-none focus:ring-2 "
	inputOK     = inputBase + "border-slate-300 focus:border-indigo-500 focus:ring-indigo-200"
	inputBad    = inputBase + "border-red-400 focus:border-red-500 focus:ring-red-200"
	cardClass   = "rounded-2xl border border-slate-200 bg-white shadow-sm"
	labelClass  = "block text-sm font-medium text-slate-700"
	hintClass   = "text-xs text-slate-500"
	linkClass   = "font-medium text-indigo-600 hover:text-indigo-500"
	smallButton = "inline-flex items-center justify-center rounded-md border border-slate-300 bg-white px-2.5 py-1.5 text-xs font-semibold text-slate-700 shadow-sm hover:bg-slate-50 focus:outline-none focus:ring-2 focus:ring-indigo-300"
)

func inputClass(err string) string {
	if err != "" {
		return inputBad
	}
	return inputOK
}

// initial is the first letter of a name, for the app's monogram.
func initial(name string) string {
	for _, r := range name {
		return string(r)
	}
	return "?"
}

func suspendedText(reason string) string {
	msg := "An administrator suspended this app: its clients cannot get tokens and the gateway refuses its calls."
	if reason != "" {
		msg += " Reason: " + reason
	}
	return msg
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func defaultPill(on bool) string {
	base := "inline-flex items-center rounded-full px-2.5 py-1 text-xs font-semibold ring-1 ring-inset focus:outline-none focus:ring-2 focus:ring-indigo-300 "
	if on {
		return base + "bg-indigo-50 text-indigo-700 ring-indigo-600/20 hover:bg-indigo-100"
	}
	return base + "bg-white text-slate-600 ring-slate-300 hover:bg-slate-50"
}

func upstreamHint(devMode bool) string {
	if devMode {
		return "https://…, or http:// to localhost while this server runs in development mode."
	}
	return "Must be https://. Leave empty until your API is ready."
}

func defaultTitle(on bool) string {
	if on {
		return "Granted when a client asks for no scope. Click to make it optional."
	}
	return "Granted only when a client asks for it. Click to make it a default."
}

// IDConnectionList is the region of an app's connections.
const IDConnectionList = "connection-list"

// ConnectionListVM is the app's "Connections" section: the providers it declares and
// the form to add one. Secrets are never part of it.
type ConnectionListVM struct {
	AppURL      string
	CallbackURL string // <base>/connections/callback, to register at every provider
	Providers   []ConnectionRow
	Presets     []ConnectionPreset
	Form        NewConnectionFormVM
}

// ConnectionRow is one declared provider.
type ConnectionRow struct {
	Provider    string // slug
	DisplayName string
	Preset      string
	ClientID    string
	Scopes      []string
	Required    bool
	Delivery    string // header | exchange
	Configured  bool   // a client ID and secret are stored
	HeaderName  string // X-AuthGPTs-Connection-<provider>
	Linked      int    // how many users linked an account
}

// ConnectionPreset is one option of the preset select.
type ConnectionPreset struct{ Value, Label string }

// NewConnectionFormVM is what was typed in the "Add a connection" form (never the secret).
type NewConnectionFormVM struct {
	Preset       string
	Provider     string
	DisplayName  string
	AuthorizeURL string
	TokenURL     string
	RevokeURL    string
	UserinfoURL  string
	Scopes       string
	ClientID     string
	Required     bool
	Delivery     string
	AuthStyle    string
	PKCE         bool
	Errors       Errors
	Notice       string
}

// DeliveryLabel is how the API gets the token, as people read it.
func (r ConnectionRow) DeliveryLabel() string {
	if r.Delivery == "header" {
		return "Gateway header " + r.HeaderName
	}
	return "Token exchange at /oauth/token"
}

package portal

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

// Limits of what one developer's app holds; they keep pages and consent screens readable.
const (
	MaxCustomScopes  = 50
	MaxClientsPerApp = 50
	maxNameLen       = 100
	maxScopeNameLen  = 64
	maxScopeDescLen  = 300
	maxUpstreamLen   = 2000
)

// Token lifetimes as the settings form shows them, within the schema's bounds.
const (
	minAccessMinutes = 1
	maxAccessMinutes = 43200 // 30 days
	minRefreshDays   = 1
	maxRefreshDays   = 365
)

// checkName validates a display name (app or client).
func checkName(raw, what string) (string, string) {
	name := strings.TrimSpace(raw)
	switch {
	case name == "":
		return name, "Enter a name for the " + what + "."
	case utf8.RuneCountInString(name) > maxNameLen:
		return name, fmt.Sprintf("Keep the name under %d characters.", maxNameLen+1)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return name, "The name cannot contain line breaks or control characters."
	}
	return name, ""
}

// checkRedirectURI validates one redirect URI with the registration rule of oauth.
func checkRedirectURI(raw string) (string, string) {
	uri := strings.TrimSpace(raw)
	if err := oauth.ValidateRedirectURI(uri); err != nil {
		return uri, describe(err)
	}
	return uri, ""
}

// describe returns the readable description of an oauth.Error.
func describe(err error) string {
	var oe oauth.Error
	if errors.As(err, &oe) && oe.Description != "" {
		return oe.Description
	}
	return "That value is not valid."
}

// CheckUpstreamURL validates an app's upstream base URL: an absolute https URL without
// credentials, query or fragment; http only to a loopback host and only when the server
// runs in development mode. It returns a message for people, or "".
func CheckUpstreamURL(raw string, devMode bool) string {
	if len(raw) > maxUpstreamLen {
		return "The URL is longer than 2000 characters."
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || strings.IndexFunc(raw, unicode.IsSpace) >= 0 || !strings.HasPrefix(raw, u.Scheme+"://") {
		return "Enter an absolute URL such as https://api.example.com."
	}
	switch {
	case u.User != nil:
		return "The URL must not contain a user name or password."
	case u.RawQuery != "" || u.ForceQuery:
		return "The base URL cannot have a query string."
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "The base URL cannot have a fragment (#)."
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && devMode && oauth.IsLoopbackURI(raw):
		return ""
	case u.Scheme == "http" && oauth.IsLoopbackURI(raw):
		return "http:// to localhost works only while the server runs in development mode; use https://."
	}
	return "The upstream must use https://."
}

// newAppForm is the "New app" form.
type newAppForm struct {
	Name        string
	CallbackURL string
}

func parseNewAppForm(c *gin.Context) (newAppForm, view.Errors) {
	errs := view.Errors{}
	var f newAppForm
	var msg string
	if f.Name, msg = checkName(c.PostForm("name"), "app"); msg != "" {
		errs["name"] = msg
	}
	f.CallbackURL = strings.TrimSpace(c.PostForm("callback_url"))
	if f.CallbackURL != "" {
		if f.CallbackURL, msg = checkRedirectURI(f.CallbackURL); msg != "" {
			errs["callback_url"] = msg
		}
	}
	return f, errs
}

// parseSettingsForm reads the settings form into the store's settings and the view
// model that shows them back as typed.
func parseSettingsForm(c *gin.Context, devMode bool) (store.AppSettings, view.SettingsVM, view.Errors) {
	errs := view.Errors{}
	vm := view.SettingsVM{
		Name:             strings.TrimSpace(c.PostForm("name")),
		Slug:             strings.ToLower(strings.TrimSpace(c.PostForm("slug"))),
		UpstreamURL:      strings.TrimSpace(c.PostForm("upstream_url")),
		AccessTTLMinutes: strings.TrimSpace(c.PostForm("access_ttl_minutes")),
		RefreshTTLDays:   strings.TrimSpace(c.PostForm("refresh_ttl_days")),
		MeteringEnabled:  c.PostForm("metering_enabled") == "on",
		CreditsPerCall:   strings.TrimSpace(c.PostForm("credits_per_call")),
		FreeCredits:      strings.TrimSpace(c.PostForm("free_credits")),
		RateLimit:        strings.TrimSpace(c.PostForm("rate_limit_per_minute")),
		MCPEnabled:       c.PostForm("mcp_enabled") == "on",
		DevMode:          devMode,
	}
	var s store.AppSettings
	var msg string
	if s.Name, msg = checkName(vm.Name, "app"); msg != "" {
		errs["name"] = msg
	}
	s.Slug = vm.Slug
	if !store.ValidSlug(s.Slug) {
		errs["slug"] = "Use 1 to 40 lowercase letters, digits and hyphens, starting and ending with a letter or digit."
	}
	s.UpstreamURL = vm.UpstreamURL
	if s.UpstreamURL != "" {
		if msg := CheckUpstreamURL(s.UpstreamURL, devMode); msg != "" {
			errs["upstream_url"] = msg
		}
	}
	if n, ok := intIn(vm.AccessTTLMinutes, minAccessMinutes, maxAccessMinutes); ok {
		s.AccessTokenTTLSeconds = int(n) * 60
	} else {
		errs["access_ttl_minutes"] = fmt.Sprintf("Enter whole minutes from %d to %d.", minAccessMinutes, maxAccessMinutes)
	}
	if n, ok := intIn(vm.RefreshTTLDays, minRefreshDays, maxRefreshDays); ok {
		s.RefreshTokenTTLSeconds = int(n) * 86400
	} else {
		errs["refresh_ttl_days"] = fmt.Sprintf("Enter whole days from %d to %d.", minRefreshDays, maxRefreshDays)
	}
	s.MeteringEnabled, s.MCPEnabled = vm.MeteringEnabled, vm.MCPEnabled
	var ok bool
	if s.CreditsPerCall, ok = intIn(vm.CreditsPerCall, 0, 1_000_000_000); !ok {
		errs["credits_per_call"] = "Enter a whole number, 0 or more."
	}
	if s.FreeCredits, ok = intIn(vm.FreeCredits, 0, 1_000_000_000_000); !ok {
		errs["free_credits"] = "Enter a whole number, 0 or more."
	}
	if n, ok := intIn(vm.RateLimit, 0, 1_000_000); ok {
		s.RateLimitPerMinute = int(n)
	} else {
		errs["rate_limit_per_minute"] = "Enter a whole number, 0 (no limit) or more."
	}
	vm.Errors = errs
	return s, vm, errs
}

// intIn parses a whole number within [lo, hi].
func intIn(raw string, lo, hi int64) (int64, bool) {
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

// scopeForm is the "Add scope" form and the scope edit form.
type scopeForm struct {
	Name        string
	Description string
	IsDefault   bool
}

func parseScopeForm(c *gin.Context) (scopeForm, view.Errors) {
	errs := view.Errors{}
	f := scopeForm{
		Name:        strings.TrimSpace(c.PostForm("name")),
		Description: strings.TrimSpace(c.PostForm("description")),
		IsDefault:   c.PostForm("is_default") == "on",
	}
	switch {
	case f.Name == "":
		errs["name"] = "Enter the scope's name, e.g. forecast:read."
	case len(f.Name) > maxScopeNameLen:
		errs["name"] = fmt.Sprintf("Keep the name to %d characters.", maxScopeNameLen)
	case !oauth.IsScopeToken(f.Name):
		// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
		errs["name"] = `Use printable ASCII without spaces, quotes (") or backslashes, e.g. forecast:read.`
	}
	if msg := checkDescription(f.Description); msg != "" {
		errs["description"] = msg
	}
	return f, errs
}

func checkDescription(d string) string {
	switch {
	case d == "":
		return "Describe what it allows: people read this on the consent page."
	case utf8.RuneCountInString(d) > maxScopeDescLen:
		return fmt.Sprintf("Keep the description to %d characters.", maxScopeDescLen)
	case strings.IndexFunc(d, unicode.IsControl) >= 0:
		return "The description cannot contain line breaks or control characters."
	}
	return ""
}

// clientKinds are the kinds a developer may add.
var clientKinds = map[string]string{
	store.ClientKindGPT:     "GPT action",
	store.ClientKindPublic:  "MCP client",
	store.ClientKindService: "Service",
}

type clientForm struct {
	Name string
	Kind string
}

func parseClientForm(c *gin.Context) (clientForm, view.Errors) {
	errs := view.Errors{}
	f := clientForm{Name: strings.TrimSpace(c.PostForm("name")), Kind: c.PostForm("kind")}
	defaultName, ok := clientKinds[f.Kind]
	if !ok {
		errs["kind"] = "Choose GPT action, Public / MCP or Service."
	}
	if f.Name == "" {
		f.Name = defaultName
	}
	if f.Name != "" {
		var msg string
		if f.Name, msg = checkName(f.Name, "client"); msg != "" {
			errs["name"] = msg
		}
	}
	return f, errs
}

// The GPT editor's callback is https://chatgpt.com/aip/<gpt-id>/oauth/callback; people
// paste either the ID or the whole URL.
var (
	gptCallback = regexp.MustCompile(`^https://(?:chatgpt\.com|chat\.openai\.com)/aip/([A-Za-z0-9_-]+)/oauth/callback$`)
	callbackID  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
)

// knownCallbacks returns the redirect URIs of a known AI client (DESIGN.md, "Known AI
// callback URLs"), or a message for the ID field that is wrong; known is false for an
// unknown preset.
func knownCallbacks(preset, gptID, connectorID string) (uris []string, msg string, known bool) {
	switch preset {
	case "gpt":
		id := strings.TrimSpace(gptID)
		if m := gptCallback.FindStringSubmatch(id); m != nil {
			id = m[1]
		}
		if !callbackID.MatchString(id) {
			return nil, "Enter the GPT ID from the editor's callback URL, e.g. g-1a2b3c4d5e (letters, digits, - and _).", true
		}
		return []string{
			"https://chatgpt.com/aip/" + id + "/oauth/callback",
			"https://chat.openai.com/aip/" + id + "/oauth/callback",
		}, "", true
	case "chatgpt_connector":
		id := strings.TrimSpace(connectorID)
		if !callbackID.MatchString(id) {
			return nil, "Enter the connector ID ChatGPT shows (letters, digits, - and _).", true
		}
		return []string{"https://chatgpt.com/connector/oauth/" + id}, "", true
	case "chatgpt_platform":
		return []string{"https://chatgpt.com/connector_platform_oauth_redirect"}, "", true
	case "claude":
		return []string{"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"}, "", true
	}
	return nil, "", false
}

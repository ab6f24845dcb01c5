// Package oauth renders the pages of the authorization endpoint: the consent page and
// the error page shown when a request cannot be answered by a redirect.
package oauth

import (
	"strings"

	"github.com/authgpts/authgpts/views/components"
)

// ConsentVM is the consent page.
type ConsentVM struct {
	AppName        string
	DeveloperEmail string
	ClientName     string
	RedirectHost   string
	UserEmail      string
	Scopes         []ScopeVM
	Ticket         string // signed binding of the form to the request and the user
	SwitchURL      string // sign in as someone else, then come back to this request

	// Who vouches for the client (issue 7). ClientOrigin is OriginMetadataDocument (its
	// name comes from a document published at DocumentHost), OriginRegistration (anyone
	// registered it: shown as a warning) or "" (created by the app's developer).
	ClientOrigin  string
	DocumentHost  string
	LocalhostOnly bool   // every redirect URI of the client is on this computer (loopback)
	Resource      string // the resource (MCP server URL) the access is for

	// Prices is what calls cost when the app is metered (nil otherwise).
	Prices *components.PriceListProps
	// Connect lists the accounts the app requires that the user has not linked yet:
	// Allow waits until they are connected.
	Connect []ConnectVM
}

// ConnectVM is one required connection on the consent page.
type ConnectVM struct {
	Name string // the provider's display name
	URL  string // /connections/<provider>/start?app=<slug>&return_to=<this page>
}

// Client origins shown on the consent page.
const (
	OriginMetadataDocument = "metadata_document"
	OriginRegistration     = "registration"
)

// ScopeVM is one requested scope.
type ScopeVM struct {
	Name        string
	Description string
	Required    bool // cannot be switched off (openid)
}

// AuthorizeErrorVM is the page shown when the client or redirect URI is not valid.
type AuthorizeErrorVM struct {
	Status    int
	Title     string
	Message   string
	RequestID string
}

// initial is the first letter of the client's name, for its avatar.
func initial(name string) string {
	for _, r := range strings.TrimSpace(name) {
		return strings.ToUpper(string(r))
	}
	return "?"
}

func scopeTitle(s ScopeVM) string {
	if s.Description != "" {
		return s.Description
	}
	return s.Name
}

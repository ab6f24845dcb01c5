// Package account renders the end user's account page: connected apps with revoke,
// sign-out everywhere, and account deletion confirmed by an emailed code.
package account

import (
	"github.com/authgpts/authgpts/views/layout"
	"github.com/authgpts/authgpts/views/portal"
)

// PageVM is the end user's account page.
type PageVM struct {
	Chrome     layout.Chrome
	Email      string
	Identities IdentitiesVM
	Apps       []ConnectedApp
	Keys       PersonalKeysVM
	Linked     LinkedAccountsVM
	Notice     string
}

// IdentitiesVM is the "Sign-in identities" section: the identities linked into this
// account, the button that asks to link another, and the offer to link the identity
// that asked in this browser before.
type IdentitiesVM struct {
	Items  []Identity
	Offer  *Identity // nil: nothing to offer
	Window string    // how soon the other sign-in and the confirmation must follow, e.g. "10 minutes"
	// Managed: the signed-in identity manages the identities linked with it. It does
	// not when an app's own provider vouches for it; ManagedElsewhere: then it is linked
	// with others, which manage it.
	Managed          bool
	ManagedElsewhere bool
}

// Identity is one sign-in identity.
type Identity struct {
	ID      string
	Name    string // the email, or the subject at its provider
	Source  string // "Email code", "GitHub", or the provider's host
	Current bool   // the identity signed in now
}

// IDPersonalKeys is the element id of the personal keys section.
const IDPersonalKeys = "personal-keys"

// PersonalKeysVM is the user's personal API keys, with a create form per connected app.
type PersonalKeysVM struct {
	Keys    []portal.APIKeyRow
	Apps    []KeyApp
	Created *portal.CreatedKeyVM
}

// KeyApp is a connected app a personal key can be made for: its key form offers the
// scopes the user granted it.
type KeyApp struct {
	AppID      string
	AppName    string
	GatewayURL string
	Scopes     []string
	Form       portal.NewKeyFormVM
	Open       bool // the form is shown open (it has errors)
}

// LinkedAccountsVM is the "Linked accounts" section: third-party accounts the user
// linked for apps, and the providers of allowed apps not linked yet.
type LinkedAccountsVM struct {
	Accounts []LinkedAccount
}

// LinkedAccount is one provider row of the section. ID is empty when not linked yet.
type LinkedAccount struct {
	ID          string
	Provider    string // display name
	AppName     string
	AccountName string
	Scopes      []string
	Status      string // active, needs_reauthorization, revoked; "" when not linked
	LastRefresh string
	ConnectURL  string // /connections/<provider>/start?app=<slug>&return_to=/account; "" for another identity's account
	Identity    string // the linked identity it belongs to, when not the one signed in
}

// StatusLabel is the status as people read it.
func (l LinkedAccount) StatusLabel() string {
	switch l.Status {
	case "active":
		return "Active"
	case "needs_reauthorization":
		return "Needs reauthorization"
	case "revoked":
		return "Revoked"
	}
	return "Not connected"
}

// StatusClass colours the status badge.
func (l LinkedAccount) StatusClass() string {
	switch l.Status {
	case "active":
		return "rounded-full bg-emerald-50 px-2 py-0.5 text-xs font-medium text-emerald-700"
	case "needs_reauthorization":
		return "rounded-full bg-amber-50 px-2 py-0.5 text-xs font-medium text-amber-800"
	}
	return "rounded-full bg-slate-100 px-2 py-0.5 text-xs font-medium text-slate-600"
}

// ConnectedApp is one live grant, formatted.
type ConnectedApp struct {
	GrantID    string
	Identity   string // the linked identity holding the grant, when not the one signed in
	AppName    string
	Developer  string
	ClientName string
	Scopes     []string
	FirstUsed  string
	LastUsed   string
	Usage      string // e.g. "42 calls this month · 958 credits left"; empty when unknown
}

// DeleteVM is the "enter the code to delete your account" page.
type DeleteVM struct {
	Chrome          layout.Chrome
	Email           string
	OtherIdentities int // linked identities that stay (each is deleted with its own email's code)
	Error           string
	Notice          string
}

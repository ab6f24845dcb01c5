// Package account renders the end user's account page: connected apps with revoke,
// sign-out everywhere, and account deletion confirmed by an emailed code.
package account

import (
	"github.com/authgpts/authgpts/views/layout"
	"github.com/authgpts/authgpts/views/portal"
)

// PageVM is the end user's account page.
type PageVM struct {
	Chrome layout.Chrome
	Email  string
	Apps   []ConnectedApp
	Keys   PersonalKeysVM
	Notice string
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

// ConnectedApp is one live grant, formatted.
type ConnectedApp struct {
	GrantID    string
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
	Chrome layout.Chrome
	Email  string
	Error  string
	Notice string
}

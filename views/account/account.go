// Package account renders the end user's account page: connected apps with revoke,
// sign-out everywhere, and account deletion confirmed by an emailed code.
package account

import "github.com/authgpts/authgpts/views/layout"

// PageVM is the end user's account page.
type PageVM struct {
	Chrome layout.Chrome
	Email  string
	Apps   []ConnectedApp
	Notice string
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

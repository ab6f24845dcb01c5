// Package signin renders the email one-time-code pages shared by sign-up and sign-in.
package signin

import "net/url"

// EmailVM is the "enter your email" page. Mode is "login" or "signup"; both post to
// the same flow, only the wording differs.
type EmailVM struct {
	Mode     string
	Email    string
	ReturnTo string
	Error    string
	Notice   string
	// Providers are the operator's upstream sign-in options (AUTHGPTS_LOGIN_*), shown
	// beside the email code.
	Providers []ProviderLink
}

// ProviderLink is one "Continue with …" button.
type ProviderLink struct {
	Label string
	URL   string
}

// CodeVM is the "enter the code we sent" page.
type CodeVM struct {
	Email      string
	ReturnTo   string
	Error      string
	Notice     string
	DevMailURL string // set in development, where mail is shown at /dev/mail
}

func (vm EmailVM) heading() string {
	if vm.Mode == "signup" {
		return "Create your account"
	}
	return "Sign in"
}

func (vm EmailVM) title() string {
	if vm.Mode == "signup" {
		return "Sign up"
	}
	return "Sign in"
}

func returnQuery(returnTo string) string {
	if returnTo == "" {
		return ""
	}
	return "?return_to=" + url.QueryEscape(returnTo)
}

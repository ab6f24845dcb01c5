package connections

import (
	"strings"

	"golang.org/x/oauth2"

	"github.com/authgpts/authgpts/store"
)

// Preset is what AuthGPTs knows of a well-known provider: its endpoints, the quirks of
// its flow, and sensible default scopes. A generic provider has none of this.
type Preset struct {
	Name         string // the slug: github, google, notion, slack, linear
	DisplayName  string
	AuthorizeURL string
	TokenURL     string
	RevokeURL    string // RFC 7009; empty when the provider offers none in that form
	UserinfoURL  string
	Scopes       []string
	AuthStyle    string
	PKCE         bool
}

// Presets are the providers offered in the portal, in display order.
var Presets = []Preset{
	{Name: "github", DisplayName: "GitHub", AuthorizeURL: "https://github.com/login/oauth/authorize",
		TokenURL: "https://github.com/login/oauth/access_token", UserinfoURL: "https://api.github.com/user",
		Scopes: []string{"read:user"}, AuthStyle: store.AuthStyleBody, PKCE: true},
	{Name: "google", DisplayName: "Google", AuthorizeURL: "https://accounts.google.com/o/oauth2/v2/auth",
		TokenURL: "https://oauth2.googleapis.com/token", RevokeURL: "https://oauth2.googleapis.com/revoke",
		UserinfoURL: "https://openidconnect.googleapis.com/v1/userinfo",
		Scopes:      []string{"openid", "email"}, AuthStyle: store.AuthStyleBody, PKCE: true},
	{Name: "notion", DisplayName: "Notion", AuthorizeURL: "https://api.notion.com/v1/oauth/authorize",
		TokenURL: "https://api.notion.com/v1/oauth/token", AuthStyle: store.AuthStyleHeader},
	// Slack: the scopes are user scopes (a user token acting for the person, asked for
	// with user_scope); auth.revoke takes the token as its token argument.
	{Name: "slack", DisplayName: "Slack", AuthorizeURL: "https://slack.com/oauth/v2/authorize",
		TokenURL: "https://slack.com/api/oauth.v2.access", RevokeURL: "https://slack.com/api/auth.revoke",
		Scopes: []string{"users:read"}, AuthStyle: store.AuthStyleBody, PKCE: true},
	{Name: "linear", DisplayName: "Linear", AuthorizeURL: "https://linear.app/oauth/authorize",
		TokenURL: "https://api.linear.app/oauth/token", RevokeURL: "https://api.linear.app/oauth/revoke",
		Scopes: []string{"read"}, AuthStyle: store.AuthStyleBody, PKCE: true},
}

// PresetByName returns the preset with that slug.
func PresetByName(name string) (Preset, bool) {
	for _, p := range Presets {
		if p.Name == name {
			return p, true
		}
	}
	return Preset{}, false
}

// authorizeOptions are the provider's quirks of the authorization request.
func authorizeOptions(p store.ConnectionProvider) []oauth2.AuthCodeOption {
	switch p.Preset {
	case "google":
		// Google issues a refresh token only for offline access, and again only when
		// the consent screen is shown (a returning user otherwise gets none).
		return []oauth2.AuthCodeOption{oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent")}
	case "notion":
		// Notion's authorize endpoint wants owner=user (a user-level integration).
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("owner", "user")}
	case "linear":
		// Linear reads the requested scopes comma-separated (and answers them
		// space-separated in the token response).
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("scope", strings.Join(p.Scopes, ","))}
	case "slack":
		// Slack: user scopes, comma-separated, in user_scope (scope would ask for a bot).
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("user_scope", strings.Join(p.Scopes, ","))}
	}
	return nil
}

// requestScopes are the scopes sent as scope: none for Slack, whose go in user_scope.
func requestScopes(p store.ConnectionProvider) []string {
	if p.Preset == "slack" {
		return nil
	}
	return p.Scopes
}

// grantedScopes reads the scopes a token response granted: GitHub answers them
// comma-separated, Linear and RFC 6749 space-separated, some providers as a JSON array.
// Without a scope field the request's scopes were granted (RFC 6749 §5.1).
func grantedScopes(tok *oauth2.Token, requested []string) []string {
	var out []string
	switch v := tok.Extra("scope").(type) {
	case string:
		out = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	case []any:
		for _, s := range v {
			if str, ok := s.(string); ok && str != "" {
				out = append(out, str)
			}
		}
	case []string: // form-encoded responses (GitHub's default) hold every value
		for _, s := range v {
			out = append(out, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
		}
	default:
		return append([]string(nil), requested...)
	}
	if out == nil {
		out = []string{}
	}
	return out
}

package oauth

import (
	"net/url"
	"path"
	"strings"
)

// RFC 8707 resource indicators. Every app's protected resource is its gateway URL
// <issuer>/gw/<slug>; a sub-path (<issuer>/gw/<slug>/mcp) is a narrower resource of the
// same app. The resource a client names becomes the aud of its access tokens.

// GatewayPathPrefix is the path under the issuer where apps' resources live.
const GatewayPathPrefix = "/gw/"

// maxResourceLength bounds a resource parameter.
const maxResourceLength = 1024

// ParamResource is the RFC 8707 request parameter.
const ParamResource = "resource"

// CanonicalResource returns the canonical form of a resource indicator: an absolute
// http(s) URI without fragment or query (RFC 8707 §2), scheme and host in lower case, no
// default port, and no trailing slash (the MCP authorization spec's canonical form, which
// clients also send in upper case). Errors are invalid_target.
func CanonicalResource(raw string) (string, error) {
	if raw == "" || len(raw) > maxResourceLength {
		return "", ErrInvalidTarget.WithDescription("The resource parameter must be an absolute URI.")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", ErrInvalidTarget.WithDescription("The resource parameter must be an absolute URI.")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "", ErrInvalidTarget.WithDescription("The resource parameter must not contain a fragment.")
	}
	if u.RawQuery != "" || u.ForceQuery {
		return "", ErrInvalidTarget.WithDescription("The resource parameter must not contain a query.")
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", ErrInvalidTarget.WithDescription("The resource parameter must be an http or https URI.")
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") { // an IPv6 literal
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host += ":" + port
	}
	p := u.EscapedPath()
	for strings.HasSuffix(p, "/") {
		p = strings.TrimSuffix(p, "/")
	}
	return scheme + "://" + host + p, nil
}

// canonicalIssuer is the issuer in the same canonical form, to compare resources with.
func canonicalIssuer(issuer string) string {
	c, err := CanonicalResource(issuer)
	if err != nil {
		return strings.TrimSuffix(issuer, "/")
	}
	return c
}

// GatewayResource splits a canonical resource of this server into the app slug and the
// sub-path below the app's root ("" for the root itself, else "/mcp", "/v1/x", …). ok is
// false for anything outside <issuer>/gw/<slug>, and for sub-paths with empty, "." or
// ".." segments (which would name one resource in two ways).
func GatewayResource(issuer, canonical string) (slug, sub string, ok bool) {
	rest, found := strings.CutPrefix(canonical, canonicalIssuer(issuer)+GatewayPathPrefix)
	if !found {
		return "", "", false
	}
	slug, sub, _ = strings.Cut(rest, "/")
	if slug == "" {
		return "", "", false
	}
	if sub != "" {
		sub = "/" + sub
		if path.Clean(sub) != sub || strings.Contains(sub, "//") {
			return "", "", false
		}
	}
	return slug, sub, true
}

// AppResource is the resource URL of the app with this slug, plus an optional sub-path.
func AppResource(issuer, slug, sub string) string {
	return canonicalIssuer(issuer) + GatewayPathPrefix + slug + sub
}

// ResourceCovers reports whether a token request's resource may be issued under a code
// or refresh token bound to bound: the same resource, or a narrower one below it
// (RFC 8707 §2.2 lets the token request narrow what was authorized).
func ResourceCovers(bound, requested string) bool {
	return requested == bound || strings.HasPrefix(requested, bound+"/")
}

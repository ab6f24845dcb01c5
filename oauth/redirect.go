package oauth

import (
	"net/netip"
	"net/url"
	"strings"
)

// MaxRedirectURILength bounds a registered redirect URI.
const MaxRedirectURILength = 2000

// ValidateRedirectURI checks a redirect URI offered for registration (portal,
// CLI, RFC 7591 registration, client ID metadata documents). It returns nil,
// or an invalid_redirect_uri Error whose description is a readable message
// that may be shown to the developer as is.
//
// Rules: an absolute URI (RFC 6749 §3.1.2) of at most 2000 characters; https,
// or http only for a loopback host (RFC 9700 §2.6, RFC 8252 §7.3: 127.0.0.0/8,
// [::1] or localhost); no fragment (RFC 6749 §3.1.2); no userinfo; no
// wildcard, since matching is by exact string (RFC 9700 §2.1).
func ValidateRedirectURI(raw string) error {
	switch {
	case raw == "":
		return redirectErr("The redirect URI is empty.")
	case len(raw) > MaxRedirectURILength:
		return redirectErr("The redirect URI is longer than 2000 characters.")
	case strings.Contains(raw, "*"):
		// RFC 9700 §2.1: exact matching, so no patterns.
		return redirectErr("The redirect URI must not contain a wildcard (*); register each URI exactly.")
	case strings.Contains(raw, "#"):
		// RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component."
		return redirectErr("The redirect URI must not contain a fragment (#).")
	case !isURIChars(raw):
		return redirectErr("The redirect URI contains spaces or characters that must be percent-encoded.")
	}

	u, err := url.Parse(raw)
	if err != nil {
		return redirectErr("The redirect URI is not a valid URL.")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return redirectErr("The redirect URI must start with https:// (http:// is allowed only for localhost, 127.0.0.1 or [::1]).")
	}
	// url.Parse lower-cases the scheme and accepts "https:host"; require the
	// literal lower-case "scheme://" form so that what is stored is what the
	// exact comparison will see.
	if !strings.HasPrefix(raw, u.Scheme+"://") {
		return redirectErr("The redirect URI must start with https:// (http:// is allowed only for localhost, 127.0.0.1 or [::1]).")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		// "https://good.com@evil.com" goes to evil.com.
		return redirectErr("The redirect URI must not contain a user name or password (@).")
	}
	host := u.Hostname()
	if host == "" {
		return redirectErr("The redirect URI has no host.")
	}
	if strings.Contains(host, "%") {
		return redirectErr("The redirect URI host must not be percent-encoded or carry an IPv6 zone.")
	}
	if u.Scheme == "http" && !isLoopbackHost(host) {
		// RFC 9700 §2.6 / RFC 8252 §8.3: plain http only for loopback.
		return redirectErr("The redirect URI must use https; http is allowed only for localhost, 127.0.0.1 or [::1].")
	}
	return nil
}

func redirectErr(msg string) error {
	return ErrInvalidRedirectURI.WithDescription(msg)
}

// MatchRedirectURI reports whether requested is one of the registered redirect
// URIs. The comparison is an exact, case-sensitive string comparison with no
// normalisation (RFC 9700 §2.1, RFC 6749 §3.1.2.3): a trailing slash, a
// different case, an extra query parameter or a percent-encoding all fail.
//
// The one exception is RFC 8252 §7.3: for a registered http URI on a loopback
// host (127.0.0.1, [::1], localhost) the port may differ, while the scheme,
// host, path and query must still match exactly. https loopback URIs get no
// such exception.
func MatchRedirectURI(registered []string, requested string) bool {
	if requested == "" {
		return false
	}
	for _, r := range registered {
		if r == requested {
			return true
		}
	}
	// Loopback any-port: the requested URI must itself be a valid redirect URI
	// (no fragment, no userinfo) before its port is ignored.
	reqWithoutPort, ok := stripLoopbackPort(requested)
	if !ok || ValidateRedirectURI(requested) != nil {
		return false
	}
	for _, r := range registered {
		if regWithoutPort, ok := stripLoopbackPort(r); ok && regWithoutPort == reqWithoutPort {
			return true
		}
	}
	return false
}

// stripLoopbackPort removes the port from an http URI whose host is a
// loopback address, returning the rest of the string untouched, or false
// when raw is not such a URI.
func stripLoopbackPort(raw string) (string, bool) {
	rest, ok := strings.CutPrefix(raw, "http://")
	if !ok {
		return "", false
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	host := authority
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.Contains(authority[i:], "]") {
		port := authority[i+1:]
		if len(port) > 5 || !allDigits(port) {
			return "", false
		}
		host = authority[:i]
	}
	bare := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") || !isLoopbackHost(bare) {
		return "", false
	}
	return "http://" + host + tail, true
}

// IsLoopbackURI reports whether raw is an absolute http or https URI, without
// userinfo, whose host is a loopback address: 127.0.0.0/8, [::1] or localhost
// (RFC 8252 §7.3). Use it, for instance, to warn on the consent page that a
// client only redirects to the user's own machine. Note that only http
// loopback URIs get the any-port match in MatchRedirectURI.
func IsLoopbackURI(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return false
	}
	return isLoopbackHost(u.Hostname())
}

// isLoopbackHost reports whether host (without brackets or port) is
// "localhost", an address in 127.0.0.0/8 or ::1. Zoned, IPv4-mapped and
// non-canonical forms such as "127.1" are not loopback here.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return false
	}
	if addr.Is4() {
		return addr.As4()[0] == 127
	}
	return addr == netip.IPv6Loopback()
}

// isURIChars reports whether s contains only characters RFC 3986 §2 allows in
// a URI: unreserved, reserved and '%'.
func isURIChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || c == '%' {
			continue
		}
		if !strings.ContainsRune(":/?#[]@!$&'()*+,;=", rune(c)) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

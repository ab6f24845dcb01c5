package web

import (
	"net/url"
	"strings"
)

// SafeReturnTo returns raw when it is a path on this site, and fallback otherwise. It is
// the only gate for post-sign-in redirects, so anything that a browser could read as
// another origin is refused: scheme-relative //host, backslashes (/\host is //host to
// browsers), encoded forms of those, control characters, and anything with a scheme or host.
func SafeReturnTo(raw, fallback string) string {
	// 8 KiB: an authorization request with a long state, scopes and resource must survive
	// the round trip through /login.
	if raw == "" || len(raw) > 8192 || !strings.HasPrefix(raw, "/") {
		return fallback
	}
	decoded := raw
	for range 3 { // undo nested percent-encoding before judging
		next, err := url.PathUnescape(decoded)
		if err != nil {
			return fallback
		}
		if next == decoded {
			break
		}
		decoded = next
	}
	for _, s := range []string{raw, decoded} {
		if strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\x00\r\n\t") {
			return fallback
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				return fallback
			}
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return fallback
	}
	return raw
}

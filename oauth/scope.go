package oauth

import (
	"slices"
	"strings"
)

// ParseScope parses an RFC 6749 §3.3 scope parameter into its tokens, in
// order and without duplicates (§3.3: "the order does not matter", so a
// repeated token adds nothing). An empty string yields nil, nil: the caller
// decides what an absent scope means (DESIGN.md: the app's default scopes).
//
// Tokens are separated by spaces. Extra spaces between, before or after
// tokens are tolerated, because clients pass a user-typed value verbatim;
// any character outside the scope-token grammar is invalid_scope.
func ParseScope(s string) ([]string, error) {
	var out []string
	for tok := range strings.SplitSeq(s, " ") {
		if tok == "" {
			continue
		}
		if !IsScopeToken(tok) {
			return nil, ErrInvalidScope.WithDescription("The scope contains a character that is not allowed.")
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out, nil
}

// IsScopeToken reports whether s is a valid RFC 6749 §3.3 scope-token:
// 1*( %x21 / %x23-5B / %x5D-7E ), printable ASCII except space, '"' and '\'.
func IsScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// FormatScope joins scope tokens with single spaces (RFC 6749 §3.3).
func FormatScope(scopes []string) string {
	return strings.Join(scopes, " ")
}

// HasScope reports whether want is among the granted scopes. Scope tokens
// are compared exactly: they are case-sensitive (RFC 6749 §3.3).
func HasScope(granted []string, want string) bool {
	return slices.Contains(granted, want)
}

// IsSubset reports whether every scope in want is in have. An empty want is
// a subset of anything; RFC 6749 §6 uses this for refresh requests, whose
// scope must not exceed the original grant.
func IsSubset(want, have []string) bool {
	for _, s := range want {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
}

package oauth

import (
	"strings"
)

// BearerToken extracts the token of an "Authorization: Bearer <token>" header value
// (RFC 6750 §2.1). The scheme is case-insensitive (RFC 9110 §11.1); the token must be
// non-empty b64token characters with no spaces. ok is false for any other value.
func BearerToken(authorization string) (token string, ok bool) {
	scheme, rest, found := strings.Cut(authorization, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" || len(token) > maxTokenLength {
		return "", false
	}
	for i := 0; i < len(token); i++ {
		c := token[i]
		// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=') {
			return "", false
		}
	}
	return token, true
}

// BearerChallenge is an RFC 6750 §3 WWW-Authenticate challenge, with the RFC 9728 §5.1
// resource_metadata parameter that points clients at the protected resource metadata.
type BearerChallenge struct {
	Realm            string // "authgpts" when empty
	Error            string // invalid_request, invalid_token, insufficient_scope; empty when no token was sent (§3.1)
	Description      string // dropped when it does not fit the quoted-string grammar
	Scope            string // space-delimited scopes the resource needs (§3, insufficient_scope)
	ResourceMetadata string // absolute URL of the protected resource metadata document
}

// String renders the challenge, e.g.
// Bearer realm="authgpts", error="invalid_token", resource_metadata="https://…".
func (c BearerChallenge) String() string {
	realm := c.Realm
	if realm == "" {
		realm = "authgpts"
	}
	var b strings.Builder
	b.WriteString("Bearer ")
	param := func(name, value string) {
		if value == "" || !isChallengeSafe(value) {
			return
		}
		if b.Len() > len("Bearer ") {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
	}
	param("realm", realm)
	param("error", c.Error)
	param("error_description", c.Description)
	param("scope", c.Scope)
	param("resource_metadata", c.ResourceMetadata)
	return b.String()
}

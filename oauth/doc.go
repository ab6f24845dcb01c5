// Package oauth is the protocol core of AuthGPTs: the parts of OAuth 2.0 and
// OpenID Connect that do not depend on HTTP routing or storage.
//
// It holds, each in its own file:
//
//   - errors.go: RFC 6749 §5.2 / RFC 6750 §3.1 / RFC 7591 §3.2.2 / RFC 8707 §2
//     error values and the single JSON error writer used by the token,
//     introspection, revocation, registration and userinfo endpoints.
//   - scope.go: RFC 6749 §3.3 scope parsing and set operations.
//   - pkce.go: RFC 7636 PKCE, S256 only ("plain" is refused everywhere).
//   - redirect.go: redirect-URI registration rules and exact matching
//     (RFC 9700 §2.1), with the RFC 8252 §7.3 loopback port exception.
//   - secret.go: opaque tokens (codes, refresh tokens, client secrets), their
//     keyed SHA-256 hashes for storage, and HKDF key derivation from the root
//     secret (AUTHGPTS_SECRET).
//   - keys.go: JWS signing keys (RS256, ES256), their encryption at rest under
//     a key-encryption key, and the immutable KeySet with its public JWKS.
//   - token.go: RFC 9068 JWT access tokens, OpenID Connect ID tokens and the
//     gateway assertion, signed and verified with go-jose.
//
// The package imports neither Gin nor the store: handlers parse requests, call
// the store, and use these functions for every protocol rule, so each rule is
// written and tested once. Grant code returns Error values; only the endpoint
// writes them, through WriteError.
//
// A typical token endpoint flow:
//
//	hash := hasher.Hash(form.Get("code"))              // look the code up by hash
//	if !oauth.VerifyPKCE(code.Challenge, code.Method, verifier) { return oauth.ErrInvalidGrant }
//	at, err := keys.SignAccessToken(oauth.AccessClaims{...})
//	oauth.WriteJSON(w, http.StatusOK, response)
//
// KeySet values are immutable and safe for concurrent use. The server builds
// a new *KeySet when keys rotate and swaps the pointer atomically; tokens
// signed by a previous active key keep verifying as long as that key is passed
// to NewKeySet among the others.
package oauth

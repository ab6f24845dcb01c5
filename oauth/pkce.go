package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// MethodS256 is the only PKCE code_challenge_method the server accepts.
// RFC 7636 §4.2 "plain" is refused everywhere (RFC 9700 §2.1.1): discovery
// advertises ["S256"] only, and a request without a method must be refused
// rather than defaulted to plain (RFC 7636 §4.3 would default it).
const MethodS256 = "S256"

// S256Challenge returns BASE64URL(SHA256(ASCII(verifier))), RFC 7636 §4.2.
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidVerifier reports whether v is a well-formed code_verifier:
// 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
// (RFC 7636 §4.1).
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !isUnreserved(v[i]) {
			return false
		}
	}
	return true
}

// ValidChallenge reports whether c is a well-formed S256 code_challenge: the
// 43-character unpadded base64url encoding of a SHA-256 digest
// (RFC 7636 §4.2), in canonical form.
func ValidChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// VerifyPKCE reports whether verifier matches the challenge stored with the
// authorization code (RFC 7636 §4.6). Only S256 is accepted; the comparison is
// constant time. A code issued without a challenge must be handled by the
// caller before calling this (RFC 9700 §2.1.1: a verifier for such a code is a
// downgrade and is refused).
func VerifyPKCE(challenge, method, verifier string) bool {
	if method != MethodS256 || !ValidChallenge(challenge) || !ValidVerifier(verifier) {
		return false
	}
	got := S256Challenge(verifier)
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// isUnreserved reports whether c is an RFC 3986 §2.3 unreserved character.
func isUnreserved(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	case c == '-', c == '.', c == '_', c == '~':
		return true
	}
	return false
}

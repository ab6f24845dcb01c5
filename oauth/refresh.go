package oauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// PurposeRefreshRotation is the DeriveKey purpose of the key that derives a refresh
// token's successor.
const PurposeRefreshRotation = "authgpts refresh rotation key v1"

// Rotator derives the successor of a refresh token: PrefixRefreshToken followed by
// base64url(HMAC-SHA256(key, token)), 256 bits no one without the server key can
// predict.
//
// Deriving rather than drawing the successor makes rotation idempotent without storing
// any token in clear: a client that repeats a refresh inside the grace window (its
// response was lost, or two requests raced) gets the very same successor as the first
// request, so whichever response it keeps is the one live token, and the family stays
// one chain (RFC 9700 §4.14.2 reuse detection still sees every older token).
type Rotator struct {
	key []byte
}

// NewRotator returns a Rotator keyed with key (DeriveKey(root, PurposeRefreshRotation,
// 32)). It panics on a key shorter than 32 bytes.
func NewRotator(key []byte) Rotator {
	if len(key) < minHashKey {
		panic(fmt.Sprintf("oauth: NewRotator: key must be at least %d bytes", minHashKey))
	}
	return Rotator{key: bytes.Clone(key)}
}

// Successor returns the refresh token that replaces token.
func (r Rotator) Successor(token string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte("refresh successor\x00"))
	m.Write([]byte(token))
	return PrefixRefreshToken + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

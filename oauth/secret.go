package oauth

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
)

// Prefixes of the opaque values the server issues. A recognisable prefix lets
// secret scanners and people tell a leaked value's kind at a glance, and
// keeps the hashes of different kinds apart (the prefix is hashed too).
const (
	PrefixClientID          = "agpt_"  // client IDs (128-bit, not secret)
	PrefixClientSecret      = "agsec_" // client secrets
	PrefixCode              = "agc_"   // authorization codes
	PrefixRefreshToken      = "agr_"   // refresh tokens
	PrefixRegistrationToken = "agreg_" // RFC 7592 registration access tokens
)

// HKDF purposes (the "info" of DeriveKey) for the keys derived from
// AUTHGPTS_SECRET. Changing one invalidates everything protected by that key.
const (
	PurposeSessionHash   = "authgpts session hash key v1"   // gorilla/securecookie hash key
	PurposeSessionBlock  = "authgpts session block key v1"  // gorilla/securecookie block key
	PurposeOTP           = "authgpts otp hmac key v1"       // HMAC of one-time codes
	PurposeTokenHash     = "authgpts token hash key v1"     // Hasher key for secrets, codes, refresh tokens
	PurposeKeyEncryption = "authgpts key encryption key v1" // SealKey/OpenKey key-encryption key
	// PurposeWebhookSecrets seals webhook endpoints' signing secrets (AES-256-GCM): the
	// server signs with them, so they are encrypted, not hashed.
	PurposeWebhookSecrets = "authgpts webhook secret key v1"
)

// tokenBytes is the entropy of every secret value: 256 bits, well above the
// 128 bits RFC 6749 §10.10 and RFC 9700 §4.5 ask for.
const tokenBytes = 32

// NewToken returns prefix followed by 256 random bits from crypto/rand,
// base64url-encoded without padding (43 characters). Use it for client
// secrets, authorization codes, refresh tokens and registration tokens.
func NewToken(prefix string) string {
	return prefix + randomString(tokenBytes)
}

// NewClientID returns a new client ID: PrefixClientID followed by 128 random
// bits, base64url-encoded without padding. Client IDs are public identifiers
// (RFC 6749 §2.2), so 128 bits of uniqueness is plenty.
func NewClientID() string {
	return PrefixClientID + randomString(16)
}

func randomString(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error since Go 1.24; it crashes the
	// program if the system's randomness fails.
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// minHashKey is the smallest key NewHasher accepts.
const minHashKey = 32

// Hasher computes the storage form of high-entropy secrets: HMAC-SHA256 under
// a server key. The values are 256-bit random, so a keyed SHA-256 is the right
// tool and a slow password KDF would only cost time (DESIGN.md, Performance);
// the key means a database dump alone cannot confirm a guessed value. Lookups
// are by hash, and the hash is all the store ever holds.
//
// A Hasher is safe for concurrent use.
type Hasher struct {
	key []byte
}

// NewHasher returns a Hasher keyed with a copy of key, normally
// DeriveKey(root, PurposeTokenHash, 32). It panics if key is shorter than 32
// bytes: a short key is a programming error that would silently weaken every
// stored hash.
func NewHasher(key []byte) Hasher {
	if len(key) < minHashKey {
		panic(fmt.Sprintf("oauth: NewHasher: key must be at least %d bytes, got %d", minHashKey, len(key)))
	}
	return Hasher{key: bytes.Clone(key)}
}

// Hash returns HMAC-SHA256(key, token), 32 bytes. It panics on a zero Hasher.
func (h Hasher) Hash(token string) []byte {
	if len(h.key) == 0 {
		panic("oauth: Hash called on a zero Hasher; use NewHasher")
	}
	m := hmac.New(sha256.New, h.key)
	_, _ = io.WriteString(m, token)
	return m.Sum(nil)
}

// Equal reports, in constant time, whether hash is the Hash of token.
func (h Hasher) Equal(token string, hash []byte) bool {
	return hmac.Equal(h.Hash(token), hash)
}

// DeriveKey derives n bytes for one purpose from the root secret with
// HKDF-SHA256 (RFC 5869), the purpose being HKDF's info and the salt empty.
// Each purpose gets an independent key, so one leaked derived key exposes
// nothing else. It panics if root is empty or n is out of HKDF's range
// (1 to 8160 bytes): both are programming errors.
func DeriveKey(root []byte, purpose string, n int) []byte {
	if len(root) == 0 {
		panic("oauth: DeriveKey: empty root secret")
	}
	if n <= 0 {
		panic("oauth: DeriveKey: key length must be positive")
	}
	key, err := hkdf.Key(sha256.New, root, nil, purpose, n)
	if err != nil {
		panic("oauth: DeriveKey: " + err.Error())
	}
	return key
}

// SecretHint is the part of a secret that may be shown again after creation: its last
// four characters, enough to tell two secrets apart and useless to an attacker.
func SecretHint(secret string) string {
	if len(secret) <= 4 {
		return ""
	}
	return "…" + secret[len(secret)-4:]
}

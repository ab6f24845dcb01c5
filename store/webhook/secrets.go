package webhook

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// SecretPrefix starts every signing secret (Standard Webhooks: "whsec_" + base64 key).
const SecretPrefix = "whsec_"

// secretBytes is the key length of a signing secret (the specification asks for 24 to 64).
const secretBytes = 32

// RotationOverlap is how long the previous secret keeps signing after a rotation.
const RotationOverlap = 24 * time.Hour

var errSealed = errors.New("webhook: the sealed secret could not be opened")

// NewSecret returns a new signing secret, "whsec_" + base64 of 32 random bytes.
func NewSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// SecretHint is what the portal shows of a secret after it was shown once.
func SecretHint(secret string) string {
	if len(secret) < len(SecretPrefix)+4 {
		return SecretPrefix + "…"
	}
	return SecretPrefix + "…" + secret[len(secret)-4:]
}

// Seal encrypts a secret for one endpoint: version byte 1, a random 12-byte nonce, then
// AES-256-GCM with the endpoint ID as associated data (a sealed secret copied to another
// row does not open).
func Seal(key []byte, endpointID, secret string) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(secret)+aead.Overhead())
	out[0] = 1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], []byte(secret), aad(endpointID)), nil
}

// Open decrypts what Seal sealed for the endpoint.
func Open(key []byte, endpointID string, sealed []byte) (string, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return "", err
	}
	n := aead.NonceSize()
	if len(sealed) < 1+n || sealed[0] != 1 {
		return "", errSealed
	}
	plain, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad(endpointID))
	if err != nil {
		return "", errSealed
	}
	return string(plain), nil
}

func aad(endpointID string) []byte { return []byte("authgpts webhook endpoint " + endpointID) }

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Sign returns the webhook-signature header for the message under each secret, space
// separated ("v1,<sig> v1,<sig>" during a rotation), with the specification's own
// library.
func Sign(secrets []string, msgID string, ts time.Time, payload []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			return "", err
		}
		sig, err := wh.Sign(msgID, ts, payload)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

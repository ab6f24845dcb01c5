package oauth

import (
	"errors"
	"fmt"
)

// HKDF purposes of the identity-source keys (see the list in secret.go).
const (
	// PurposeUpstreamSecret is the AES-256-GCM key that seals the secrets a developer
	// gives us or we generate for an app's identity source: the upstream client secret
	// and the own-login signing secret.
	PurposeUpstreamSecret = "authgpts upstream secret key v1"
	// PurposeUpstreamState keys the derivation of an outbound flow's PKCE verifier and
	// nonce from its state, and the hashes of the state and of the browser binding.
	PurposeUpstreamState = "authgpts upstream state key v1"
)

// ErrUnsealed is returned by OpenSecret for a ciphertext that does not open under the
// key and associated data (wrong key, or moved to another row or column).
var ErrUnsealed = errors.New("oauth: sealed secret does not open")

// SealSecret encrypts plaintext with AES-256-GCM under the 32-byte key (normally
// DeriveKey(root, PurposeUpstreamSecret, 32)) with a random nonce; ad (the row ID and
// the column) is authenticated, so a ciphertext copied to another row does not open.
// The result is version byte || nonce || ciphertext || tag.
func SealSecret(key []byte, ad string, plaintext []byte) ([]byte, error) {
	aead, err := newKeyAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("oauth: seal secret: %w", err)
	}
	return aead.Seal([]byte{sealVersion}, nil, plaintext, []byte(ad)), nil
}

// OpenSecret decrypts a secret sealed by SealSecret with the same key and ad.
func OpenSecret(key []byte, ad string, sealed []byte) ([]byte, error) {
	aead, err := newKeyAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("oauth: open secret: %w", err)
	}
	if len(sealed) < 1 || sealed[0] != sealVersion {
		return nil, ErrUnsealed
	}
	out, err := aead.Open(nil, nil, sealed[1:], []byte(ad))
	if err != nil {
		return nil, ErrUnsealed
	}
	return out, nil
}

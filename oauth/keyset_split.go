package oauth

import "fmt"

// NewSplitKeySet returns a KeySet that signs access tokens with accessKey and ID tokens
// and assertions with idKey, and verifies signatures of both and of others. All of them
// are published in the JWKS; Active returns accessKey.
//
// AuthGPTs signs access tokens with ES256 (about 40 µs a signature against 830 µs for
// RS256, which would cap client_credentials issuance near 2,000 tokens/s on two cores)
// and ID tokens with RS256, the algorithm every OpenID Connect relying party supports
// and the default when none was registered (OpenID Connect Core §15.1, Registration §2).
// With accessKey == idKey it is NewKeySet. An invalid key is an error, as in NewKeySet.
func NewSplitKeySet(accessKey, idKey SigningKey, others ...SigningKey) (*KeySet, error) {
	ks, err := NewKeySet(accessKey, append([]SigningKey{idKey}, others...)...)
	if err != nil || idKey.ID == accessKey.ID {
		return ks, err
	}
	if ks.jwtSigner, err = newSigner(idKey, "JWT"); err != nil {
		return nil, fmt.Errorf("oauth: key set: %w", err)
	}
	return ks, nil
}

// KeyIDs returns the IDs of every key in the set (for logs and tests).
func (ks *KeySet) KeyIDs() []string {
	if ks == nil {
		return nil
	}
	ids := make([]string, 0, len(ks.keys))
	for id := range ks.keys {
		ids = append(ids, id)
	}
	return ids
}

// String describes the set without key material: its key IDs.
func (ks *KeySet) String() string {
	if ks == nil {
		return "KeySet(nil)"
	}
	return fmt.Sprintf("KeySet{active: %s, keys: %d}", ks.active.ID, len(ks.keys))
}

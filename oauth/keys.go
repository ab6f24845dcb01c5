package oauth

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// JWS algorithms the server signs and verifies with (RFC 7518 §3.3, §3.4).
// RS256 is the one every OpenID Connect relying party must support
// (OpenID Connect Core §15.1); ES256 is smaller and faster.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
)

// rsaKeyBits is the size of generated RSA keys and the minimum accepted
// (RFC 7518 §3.3: 2048 bits or larger).
const rsaKeyBits = 2048

// SigningKey is one JWS signing key. ID is the RFC 7638 JWK thumbprint
// (SHA-256, base64url) of the public key and is used as the "kid".
//
// A SigningKey holds private key material: its String, GoString, LogValue
// and MarshalJSON methods print only the ID, the algorithm and the creation
// time, so a stray log line or JSON dump cannot leak it.
type SigningKey struct {
	ID        string
	Alg       string
	Private   crypto.Signer
	CreatedAt time.Time
}

// GenerateKey creates a new signing key for alg (AlgRS256: 2048-bit RSA,
// AlgES256: P-256) whose ID is its RFC 7638 thumbprint.
func GenerateKey(alg string) (SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaKeyBits)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return SigningKey{}, fmt.Errorf("oauth: generate key: unsupported algorithm %q (want RS256 or ES256)", alg)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("oauth: generate %s key: %w", alg, err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return SigningKey{}, fmt.Errorf("oauth: generate %s key: %w", alg, err)
	}
	return SigningKey{ID: kid, Alg: alg, Private: priv, CreatedAt: time.Now().UTC()}, nil
}

// thumbprint returns the RFC 7638 JWK thumbprint of pub: SHA-256 over the
// canonical JSON of the required members, base64url without padding.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// validate checks that the key is usable for its algorithm.
func (k SigningKey) validate() error {
	if k.ID == "" {
		return errors.New("empty key ID")
	}
	if k.Private == nil {
		return errors.New("no private key")
	}
	return checkPublicKey(k.Alg, k.Private.Public())
}

// checkPublicKey checks that pub has the type and size alg requires.
func checkPublicKey(alg string, pub crypto.PublicKey) error {
	switch alg {
	case AlgRS256:
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("RS256 needs an RSA key, got %T", pub)
		}
		if rk.N == nil || rk.N.BitLen() < rsaKeyBits {
			return fmt.Errorf("RS256 key must be at least %d bits", rsaKeyBits)
		}
	case AlgES256:
		ek, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("ES256 needs an ECDSA key, got %T", pub)
		}
		if ek.Curve != elliptic.P256() {
			return errors.New("ES256 needs a P-256 key")
		}
	default:
		return fmt.Errorf("unsupported algorithm %q", alg)
	}
	return nil
}

// String describes the key without its private material.
func (k SigningKey) String() string {
	return fmt.Sprintf("SigningKey{ID: %s, Alg: %s, CreatedAt: %s}", k.ID, k.Alg, k.CreatedAt.Format(time.RFC3339))
}

// GoString describes the key without its private material (for %#v).
func (k SigningKey) GoString() string { return k.String() }

// LogValue logs the key without its private material.
func (k SigningKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.ID), slog.String("alg", k.Alg), slog.Time("created_at", k.CreatedAt))
}

// MarshalJSON encodes the key without its private material.
func (k SigningKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID        string    `json:"kid"`
		Alg       string    `json:"alg"`
		CreatedAt time.Time `json:"created_at"`
	}{k.ID, k.Alg, k.CreatedAt})
}

// sealVersion prefixes every sealed key, so the format can change later.
const sealVersion byte = 1

// SealKey encrypts k's private key (PKCS#8 DER) with AES-256-GCM under the
// 32-byte key-encryption key kek (normally DeriveKey(root,
// PurposeKeyEncryption, 32)), with a random nonce and the key ID as
// additional data: a ciphertext moved to another row's ID does not open.
// The result is version byte || nonce || ciphertext || tag.
func SealKey(kek []byte, k SigningKey) ([]byte, error) {
	if err := k.validate(); err != nil {
		return nil, fmt.Errorf("oauth: seal key %s: %w", k.ID, err)
	}
	aead, err := newKeyAEAD(kek)
	if err != nil {
		return nil, fmt.Errorf("oauth: seal key %s: %w", k.ID, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("oauth: seal key %s: %w", k.ID, err)
	}
	defer clear(der)
	return aead.Seal([]byte{sealVersion}, nil, der, []byte(k.ID)), nil
}

// OpenKey decrypts a key sealed by SealKey, checks that the private key fits
// alg and that id is its thumbprint, and returns it. CreatedAt is left zero
// for the caller to fill from its own record. A wrong kek, a swapped id or a
// modified ciphertext all fail.
func OpenKey(kek []byte, id, alg string, sealed []byte) (SigningKey, error) {
	aead, err := newKeyAEAD(kek)
	if err != nil {
		return SigningKey{}, fmt.Errorf("oauth: open key %s: %w", id, err)
	}
	if len(sealed) < 1 || sealed[0] != sealVersion {
		return SigningKey{}, fmt.Errorf("oauth: open key %s: unknown sealed key format", id)
	}
	der, err := aead.Open(nil, nil, sealed[1:], []byte(id))
	if err != nil {
		return SigningKey{}, fmt.Errorf("oauth: open key %s: decryption failed (wrong key-encryption key, or ciphertext of another key)", id)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return SigningKey{}, fmt.Errorf("oauth: open key %s: %w", id, err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return SigningKey{}, fmt.Errorf("oauth: open key %s: %T is not a signing key", id, parsed)
	}
	k := SigningKey{ID: id, Alg: alg, Private: priv}
	if err := k.validate(); err != nil {
		return SigningKey{}, fmt.Errorf("oauth: open key %s: %w", id, err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return SigningKey{}, fmt.Errorf("oauth: open key %s: %w", id, err)
	}
	if kid != id {
		return SigningKey{}, fmt.Errorf("oauth: open key %s: key ID does not match the key's thumbprint", id)
	}
	return k, nil
}

// newKeyAEAD returns AES-256-GCM with a random 96-bit nonce prepended to each
// ciphertext.
func newKeyAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("key-encryption key must be 32 bytes, got %d", len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithRandomNonce(block)
}

// verificationKey is a public key a KeySet accepts signatures from.
type verificationKey struct {
	alg jose.SignatureAlgorithm
	pub crypto.PublicKey
}

// KeySet is the immutable set of keys the server signs and verifies with: one
// active signing key and any number of verification-only keys (previous keys
// during rotation overlap, or the next key published ahead of use). It is
// safe for concurrent use; rotation builds a new KeySet and swaps the pointer
// (for example with atomic.Pointer[KeySet]).
//
// The jose signers and the JWKS document are built once, in NewKeySet, so
// signing pays no setup and serving the JWKS is a byte copy.
type KeySet struct {
	active    SigningKey
	atSigner  jose.Signer // typ at+jwt, RFC 9068 §2.1
	jwtSigner jose.Signer // typ JWT, ID tokens and assertions
	keys      map[string]verificationKey
	jwks      []byte
}

// NewKeySet returns a KeySet that signs with active and verifies signatures
// of active and others. Keys are published in the JWKS in that order; a
// repeated ID is listed once. It returns an error if a key is invalid (no ID,
// no private key, or a key whose type or size does not fit its Alg): keys come
// from the database, so a bad row must not crash the server.
func NewKeySet(active SigningKey, others ...SigningKey) (*KeySet, error) {
	all := append([]SigningKey{active}, others...)
	for _, k := range all {
		if err := k.validate(); err != nil {
			return nil, fmt.Errorf("oauth: key set: key %q: %w", k.ID, err)
		}
	}

	ks := &KeySet{active: active, keys: make(map[string]verificationKey, len(all))}
	var pubs []jose.JSONWebKey
	for _, k := range all {
		if _, dup := ks.keys[k.ID]; dup {
			continue
		}
		pub := k.Private.Public()
		ks.keys[k.ID] = verificationKey{alg: jose.SignatureAlgorithm(k.Alg), pub: pub}
		pubs = append(pubs, jose.JSONWebKey{Key: pub, KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
	}

	var err error
	if ks.atSigner, err = newSigner(active, accessTokenType); err != nil {
		return nil, fmt.Errorf("oauth: key set: %w", err)
	}
	if ks.jwtSigner, err = newSigner(active, "JWT"); err != nil {
		return nil, fmt.Errorf("oauth: key set: %w", err)
	}
	if ks.jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: pubs}); err != nil {
		return nil, fmt.Errorf("oauth: key set: JWKS: %w", err)
	}
	return ks, nil
}

// newSigner returns a jose signer for k that sets kid and typ.
func newSigner(k SigningKey, typ jose.ContentType) (jose.Signer, error) {
	return jose.NewSigner(
		jose.SigningKey{
			Algorithm: jose.SignatureAlgorithm(k.Alg),
			Key:       jose.JSONWebKey{Key: k.Private, KeyID: k.ID},
		},
		(&jose.SignerOptions{}).WithType(typ),
	)
}

// NewVerifyingKeySet parses a JWKS document (RFC 7517 §5), such as the one at
// /.well-known/jwks.json, into a KeySet that verifies tokens but cannot sign:
// Active returns the zero SigningKey and the Sign methods return an error.
// Keys that are not RS256 (RSA ≥ 2048 bits) or ES256 (P-256) signature keys
// with a kid are skipped; private parameters, if any, are dropped. It fails
// when no usable key remains.
func NewVerifyingKeySet(jwksJSON []byte) (*KeySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwksJSON, &doc); err != nil {
		return nil, fmt.Errorf("oauth: parse JWKS: %w", err)
	}

	ks := &KeySet{keys: make(map[string]verificationKey, len(doc.Keys))}
	var pubs []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			continue // unknown key types are allowed in a JWKS, RFC 7517 §5
		}
		if jwk.KeyID == "" || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		if _, dup := ks.keys[jwk.KeyID]; dup {
			continue
		}
		pub := jwk.Public()
		if !pub.Valid() {
			continue
		}
		alg := jwk.Algorithm
		if alg == "" {
			// RFC 7517 §4.4: "alg" is optional; infer it from the key type.
			switch pub.Key.(type) {
			case *rsa.PublicKey:
				alg = AlgRS256
			case *ecdsa.PublicKey:
				alg = AlgES256
			}
		}
		if checkPublicKey(alg, pub.Key) != nil {
			continue
		}
		ks.keys[jwk.KeyID] = verificationKey{alg: jose.SignatureAlgorithm(alg), pub: pub.Key}
		pubs = append(pubs, jose.JSONWebKey{Key: pub.Key, KeyID: jwk.KeyID, Algorithm: alg, Use: "sig"})
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("oauth: parse JWKS: no RS256 or ES256 signature key with a kid")
	}
	var err error
	ks.jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: pubs})
	if err != nil {
		return nil, fmt.Errorf("oauth: parse JWKS: %w", err)
	}
	return ks, nil
}

// Active returns the signing key, or the zero SigningKey for a verify-only
// KeySet.
func (ks *KeySet) Active() SigningKey {
	return ks.active
}

// JWKS returns a copy of the public JWK Set document (RFC 7517 §5): every key
// of the set with kid, alg and use "sig", and no private parameters.
func (ks *KeySet) JWKS() []byte {
	return append([]byte(nil), ks.jwks...)
}

// canSign reports whether the KeySet has a signing key.
func (ks *KeySet) canSign() error {
	if ks == nil || ks.atSigner == nil || ks.jwtSigner == nil {
		return errors.New("oauth: key set has no signing key")
	}
	return nil
}

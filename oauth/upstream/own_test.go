package upstream

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func signAssertion(t *testing.T, alg jose.SignatureAlgorithm, key any, c jwt.Claims, extra map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(c).Claims(extra).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A registered public key verifies ES256 assertions; the same key's JSON used as an
// HMAC secret (the classic algorithm confusion) does not, nor does another key.
func TestVerifyAssertion_RegisteredPublicKey(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: "ES256"})
	if err := ValidPublicJWK(string(pub)); err != nil {
		t.Fatalf("ValidPublicJWK(public) = %v", err)
	}
	privJSON, _ := json.Marshal(jose.JSONWebKey{Key: priv})
	if err := ValidPublicJWK(string(privJSON)); err == nil {
		t.Error("ValidPublicJWK accepted a private key")
	}
	now := time.Now()
	aud, nonce := "https://auth.example/login/own/app-1", "n-1"
	claims := jwt.Claims{Subject: "u-1", Audience: jwt.Audience{aud}, ID: "j-1", IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	extra := map[string]any{"nonce": nonce}
	secret := []byte("agown_app-secret-app-secret-app-secret-app-sec")

	got, err := VerifyAssertion(signAssertion(t, jose.ES256, priv, claims, extra), secret, string(pub), aud, nonce, now)
	if err != nil || got.Subject != "u-1" || got.JTI != "j-1" {
		t.Fatalf("VerifyAssertion(ES256, registered key) = %+v, %v", got, err)
	}
	tests := []struct {
		name string
		raw  string
		jwk  string
	}{
		{"other key", signAssertion(t, jose.ES256, other, claims, extra), string(pub)},
		{"no key registered", signAssertion(t, jose.ES256, priv, claims, extra), ""},
		{"public key JSON as HMAC secret", signAssertion(t, jose.HS256, pub, claims, extra), string(pub)},
		{"alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1LTEifQ.", string(pub)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := VerifyAssertion(tt.raw, secret, tt.jwk, aud, nonce, now); !errors.Is(err, ErrAssertionSignature) {
				t.Errorf("VerifyAssertion() = %v, want ErrAssertionSignature", err)
			}
		})
	}
}

package oauth

import (
	"bytes"
	"testing"
)

func benchmarkSign(b *testing.B, alg string) {
	ks := mustKeySet(b, testKey(b, alg, 0))
	c := testAccessClaims(testNow)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.SignAccessToken(c); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkVerify(b *testing.B, alg string) {
	ks := mustKeySet(b, testKey(b, alg, 0), testKey(b, alg, 1))
	tok, err := ks.SignAccessToken(testAccessClaims(testNow))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.VerifyAccessToken(tok, testNow, testIssuer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignAccessTokenRS256(b *testing.B)   { benchmarkSign(b, AlgRS256) }
func BenchmarkSignAccessTokenES256(b *testing.B)   { benchmarkSign(b, AlgES256) }
func BenchmarkVerifyAccessTokenRS256(b *testing.B) { benchmarkVerify(b, AlgRS256) }
func BenchmarkVerifyAccessTokenES256(b *testing.B) { benchmarkVerify(b, AlgES256) }

// BenchmarkHash is the storage hash of a refresh token or client secret: the
// cost the token endpoint pays per secret (DESIGN.md: never a slow KDF).
func BenchmarkHash(b *testing.B) {
	h := NewHasher(bytes.Repeat([]byte{1}, 32))
	tok := NewToken(PrefixRefreshToken)
	b.ReportAllocs()
	for b.Loop() {
		h.Hash(tok)
	}
}

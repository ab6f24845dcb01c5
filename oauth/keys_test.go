package oauth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Keys are generated once per test binary: RSA generation is slow.
var (
	testKeysOnce sync.Once
	testKeys     map[string][]SigningKey
)

// testKey returns the i-th (0..2) cached key for alg.
func testKey(tb testing.TB, alg string, i int) SigningKey {
	tb.Helper()
	testKeysOnce.Do(func() {
		testKeys = map[string][]SigningKey{}
		for _, a := range []string{AlgRS256, AlgES256} {
			for range 3 {
				k, err := GenerateKey(a)
				if err != nil {
					panic(err)
				}
				testKeys[a] = append(testKeys[a], k)
			}
		}
	})
	return testKeys[alg][i]
}

func testKEK() []byte {
	return DeriveKey([]byte("test root secret, not for production"), PurposeKeyEncryption, 32)
}

func TestGenerateKey(t *testing.T) {
	tests := []struct {
		alg     string
		wantErr bool
	}{
		{AlgRS256, false},
		{AlgES256, false},
		{"HS256", true},
		{"none", true},
		{"RS512", true},
		{"rs256", true},
		{"", true},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			k, err := GenerateKey(tt.alg)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("GenerateKey(%q) = %v, want error", tt.alg, k)
				}
				return
			}
			if err != nil {
				t.Fatalf("GenerateKey(%q) error = %v", tt.alg, err)
			}
			if k.Alg != tt.alg || k.CreatedAt.IsZero() {
				t.Errorf("GenerateKey(%q) = %v", tt.alg, k)
			}
			switch pub := k.Private.Public().(type) {
			case *rsa.PublicKey:
				if tt.alg != AlgRS256 || pub.N.BitLen() != 2048 {
					t.Errorf("GenerateKey(%q) RSA key of %d bits", tt.alg, pub.N.BitLen())
				}
			case *ecdsa.PublicKey:
				if tt.alg != AlgES256 || pub.Curve != elliptic.P256() {
					t.Errorf("GenerateKey(%q) ECDSA key on %v", tt.alg, pub.Curve.Params().Name)
				}
			default:
				t.Errorf("GenerateKey(%q) key type %T", tt.alg, pub)
			}
			// kid is the RFC 7638 thumbprint.
			jwk := jose.JSONWebKey{Key: k.Private.Public()}
			sum, _ := jwk.Thumbprint(crypto.SHA256)
			if want := b64(sum); k.ID != want {
				t.Errorf("kid = %q, want thumbprint %q", k.ID, want)
			}
		})
	}
}

func TestThumbprintRFC7638(t *testing.T) {
	// RFC 7638 §3.1 example key and thumbprint.
	const jwkJSON = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}`
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON([]byte(jwkJSON)); err != nil {
		t.Fatal(err)
	}
	got, err := thumbprint(jwk.Key)
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; err != nil || got != want {
		t.Errorf("thumbprint() = %q, %v; want %q", got, err, want)
	}
}

func TestSealOpenKey(t *testing.T) {
	kek := testKEK()
	for _, alg := range []string{AlgRS256, AlgES256} {
		t.Run(alg, func(t *testing.T) {
			k := testKey(t, alg, 0)
			sealed, err := SealKey(kek, k)
			if err != nil {
				t.Fatalf("SealKey() error = %v", err)
			}
			opened, err := OpenKey(kek, k.ID, k.Alg, sealed)
			if err != nil {
				t.Fatalf("OpenKey() error = %v", err)
			}
			if opened.ID != k.ID || opened.Alg != k.Alg {
				t.Errorf("OpenKey() = %v, want %v", opened, k)
			}
			type equaler interface{ Equal(crypto.PrivateKey) bool }
			if !k.Private.(equaler).Equal(opened.Private) {
				t.Error("OpenKey() returned a different private key")
			}
			again, _ := SealKey(kek, k)
			if bytes.Equal(sealed, again) {
				t.Error("SealKey() is deterministic: the nonce must be random")
			}
		})
	}
}

func TestOpenKeyRefuses(t *testing.T) {
	kek := testKEK()
	rsaKey := testKey(t, AlgRS256, 0)
	ecKey := testKey(t, AlgES256, 0)
	otherEC := testKey(t, AlgES256, 1)
	sealedRSA, err := SealKey(kek, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	sealedEC, err := SealKey(kek, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(sealedEC)
	tampered[len(tampered)/2] ^= 1
	wrongVersion := bytes.Clone(sealedEC)
	wrongVersion[0] = 2

	tests := []struct {
		name   string
		kek    []byte
		id     string
		alg    string
		sealed []byte
	}{
		{"wrong KEK", DeriveKey([]byte("another root secret entirely"), PurposeKeyEncryption, 32), ecKey.ID, AlgES256, sealedEC},
		{"swapped kid", kek, otherEC.ID, AlgES256, sealedEC},
		{"swapped rows", kek, rsaKey.ID, AlgRS256, sealedEC},
		{"wrong alg for key", kek, rsaKey.ID, AlgES256, sealedRSA},
		{"unknown alg", kek, ecKey.ID, "HS256", sealedEC},
		{"tampered ciphertext", kek, ecKey.ID, AlgES256, tampered},
		{"truncated", kek, ecKey.ID, AlgES256, sealedEC[:20]},
		{"empty", kek, ecKey.ID, AlgES256, nil},
		{"unknown version", kek, ecKey.ID, AlgES256, wrongVersion},
		{"short KEK", kek[:16], ecKey.ID, AlgES256, sealedEC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := OpenKey(tt.kek, tt.id, tt.alg, tt.sealed)
			if err == nil {
				t.Fatalf("OpenKey() = %v, want error", k)
			}
			if k.Private != nil {
				t.Error("OpenKey() returned a key along with its error")
			}
		})
	}
}

func TestSealKeyRefuses(t *testing.T) {
	k := testKey(t, AlgES256, 0)
	if _, err := SealKey(make([]byte, 16), k); err == nil {
		t.Error("SealKey() with a 16-byte KEK succeeded, want error")
	}
	if _, err := SealKey(testKEK(), SigningKey{ID: "x", Alg: AlgES256}); err == nil {
		t.Error("SealKey() without a private key succeeded, want error")
	}
}

func TestSigningKeyDoesNotPrintSecrets(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		k := testKey(t, alg, 0)
		var d string
		switch p := k.Private.(type) {
		case *rsa.PrivateKey:
			d = p.D.String()
		case *ecdsa.PrivateKey:
			b, _ := p.Bytes()
			d = fmt.Sprint(b)
		}
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("key", "key", k)
		js, _ := json.Marshal(k)
		outputs := map[string]string{
			"%v":   fmt.Sprintf("%v", k),
			"%+v":  fmt.Sprintf("%+v", k),
			"%#v":  fmt.Sprintf("%#v", k),
			"slog": logs.String(),
			"json": string(js),
		}
		for name, out := range outputs {
			if !strings.Contains(out, k.ID) {
				t.Errorf("%s %s output %q lacks the kid", alg, name, out)
			}
			if strings.Contains(out, d) || strings.Contains(out, `"d"`) || strings.Contains(out, "Primes") {
				t.Errorf("%s %s output leaks private key material: %q", alg, name, out)
			}
		}
	}
}

func TestNewKeySetJWKS(t *testing.T) {
	active := testKey(t, AlgRS256, 0)
	old := testKey(t, AlgES256, 0)
	ks := mustKeySet(t, active, old, active) // a repeated key is listed once

	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(ks.JWKS(), &doc); err != nil {
		t.Fatalf("JWKS() is not JSON: %v", err)
	}
	if len(doc.Keys) != 2 {
		t.Fatalf("JWKS() has %d keys, want 2", len(doc.Keys))
	}
	wants := []SigningKey{active, old}
	for i, k := range doc.Keys {
		if k["kid"] != wants[i].ID || k["alg"] != wants[i].Alg || k["use"] != "sig" {
			t.Errorf("JWKS key %d = kid %v alg %v use %v, want %s %s sig", i, k["kid"], k["alg"], k["use"], wants[i].ID, wants[i].Alg)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %d has private member %q", i, private)
			}
		}
	}
	if ks.Active().ID != active.ID {
		t.Errorf("Active() = %v, want %v", ks.Active(), active)
	}

	// JWKS returns a copy.
	b := ks.JWKS()
	b[0] = 'X'
	if ks.JWKS()[0] != '{' {
		t.Error("JWKS() returned the shared buffer")
	}
}

// mustKeySet is NewKeySet for keys a test knows are valid.
func mustKeySet(tb testing.TB, active SigningKey, others ...SigningKey) *KeySet {
	tb.Helper()
	ks, err := NewKeySet(active, others...)
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

func TestNewKeySetRejectsInvalidKey(t *testing.T) {
	rsaKey := testKey(t, AlgRS256, 0)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tests := []struct {
		name string
		key  SigningKey
	}{
		{"zero", SigningKey{}},
		{"no ID", SigningKey{Alg: AlgRS256, Private: rsaKey.Private}},
		{"alg mismatch", SigningKey{ID: "x", Alg: AlgES256, Private: rsaKey.Private}},
		{"unknown alg", SigningKey{ID: "x", Alg: "PS256", Private: rsaKey.Private}},
		{"RSA 1024", SigningKey{ID: "x", Alg: AlgRS256, Private: small}},
		{"Ed25519", SigningKey{ID: "x", Alg: AlgES256, Private: edPriv}},
		{"P-384 as ES256", SigningKey{ID: "x", Alg: AlgES256, Private: p384}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ks, err := NewKeySet(rsaKey, tt.key); err == nil || ks != nil {
				t.Errorf("NewKeySet(%v) = %v, %v; want an error", tt.key, ks, err)
			}
		})
	}
}

func TestNewVerifyingKeySet(t *testing.T) {
	active := testKey(t, AlgES256, 0)
	old := testKey(t, AlgRS256, 0)
	full := mustKeySet(t, active, old)

	vks, err := NewVerifyingKeySet(full.JWKS())
	if err != nil {
		t.Fatalf("NewVerifyingKeySet() error = %v", err)
	}
	if vks.Active().Private != nil || vks.Active().ID != "" {
		t.Errorf("Active() = %v, want the zero key", vks.Active())
	}
	if !bytes.Equal(vks.JWKS(), full.JWKS()) {
		t.Errorf("JWKS() = %s, want %s", vks.JWKS(), full.JWKS())
	}
	if _, err := vks.SignAccessToken(testAccessClaims(testNow)); err == nil {
		t.Error("SignAccessToken() on a verify-only set succeeded")
	}
	if _, err := vks.SignIDToken(IDClaims{Issuer: testIssuer, Subject: "u", Audience: "c", IssuedAt: testNow, Expiry: testNow.Add(time.Hour)}); err == nil {
		t.Error("SignIDToken() on a verify-only set succeeded")
	}
	if _, err := vks.SignAssertion(map[string]any{"exp": 1}); err == nil {
		t.Error("SignAssertion() on a verify-only set succeeded")
	}

	// Tokens from either key verify.
	for _, signer := range []*KeySet{full, mustKeySet(t, old)} {
		tok, err := signer.SignAccessToken(testAccessClaims(testNow))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vks.VerifyAccessToken(tok, testNow, testIssuer); err != nil {
			t.Errorf("VerifyAccessToken() with a JWKS key set: %v", err)
		}
	}
}

func TestNewVerifyingKeySetFilters(t *testing.T) {
	es := testKey(t, AlgES256, 0)
	rs := testKey(t, AlgRS256, 0)
	pubJWK := func(k SigningKey, alg, use, kid string) string {
		b, err := json.Marshal(jose.JSONWebKey{Key: k.Private.Public(), KeyID: kid, Algorithm: alg, Use: use})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: es.Private, KeyID: es.ID, Algorithm: AlgES256, Use: "sig"})
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallJWK, _ := json.Marshal(jose.JSONWebKey{Key: small.Public(), KeyID: "small", Algorithm: AlgRS256})

	tests := []struct {
		name     string
		jwks     string
		wantKids []string
		wantErr  bool
	}{
		{"alg inferred", `{"keys":[` + pubJWK(es, "", "", es.ID) + `,` + pubJWK(rs, "", "sig", rs.ID) + `]}`, []string{es.ID, rs.ID}, false},
		{"encryption key skipped", `{"keys":[` + pubJWK(es, AlgES256, "enc", "enc") + `,` + pubJWK(rs, AlgRS256, "sig", rs.ID) + `]}`, []string{rs.ID}, false},
		{"no kid skipped", `{"keys":[` + pubJWK(es, AlgES256, "sig", "") + `,` + pubJWK(rs, AlgRS256, "sig", rs.ID) + `]}`, []string{rs.ID}, false},
		{"alg mismatch skipped", `{"keys":[` + pubJWK(es, AlgRS256, "sig", "x") + `,` + pubJWK(rs, AlgRS256, "sig", rs.ID) + `]}`, []string{rs.ID}, false},
		{"HS256 skipped", `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"h","alg":"HS256"},` + pubJWK(rs, AlgRS256, "sig", rs.ID) + `]}`, []string{rs.ID}, false},
		{"unknown kty skipped", `{"keys":[{"kty":"XYZ","kid":"u"},` + pubJWK(rs, AlgRS256, "sig", rs.ID) + `]}`, []string{rs.ID}, false},
		{"small RSA skipped", `{"keys":[` + string(smallJWK) + `,` + pubJWK(rs, AlgRS256, "sig", rs.ID) + `]}`, []string{rs.ID}, false},
		{"private material dropped", `{"keys":[` + string(privJWK) + `]}`, []string{es.ID}, false},
		{"nothing usable", `{"keys":[` + pubJWK(es, AlgES256, "enc", "enc") + `]}`, nil, true},
		{"empty", `{"keys":[]}`, nil, true},
		{"not JSON", `nope`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := NewVerifyingKeySet([]byte(tt.jwks))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewVerifyingKeySet() = %s, want error", ks.JWKS())
				}
				return
			}
			if err != nil {
				t.Fatalf("NewVerifyingKeySet() error = %v", err)
			}
			if len(ks.keys) != len(tt.wantKids) {
				t.Errorf("got %d keys, want %v", len(ks.keys), tt.wantKids)
			}
			for _, kid := range tt.wantKids {
				if _, ok := ks.keys[kid]; !ok {
					t.Errorf("key %q missing", kid)
				}
			}
			if strings.Contains(string(ks.JWKS()), `"d"`) {
				t.Errorf("JWKS() has private material: %s", ks.JWKS())
			}
		})
	}
}

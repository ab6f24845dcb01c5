package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const testIssuer = "https://auth.example.com"

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func testAccessClaims(now time.Time) AccessClaims {
	return AccessClaims{
		Issuer:   testIssuer,
		Subject:  "user-123",
		ClientID: "agpt_client",
		Scope:    "openid email read",
		JTI:      "jti-1",
		GrantID:  "grant-9",
		Audience: []string{"https://auth.example.com/gw/orders"},
		IssuedAt: now,
		Expiry:   now.Add(time.Hour),
		Email:    "user@example.com",
	}
}

// rawToken builds a compact JWS by hand, so tests can put anything in the
// header and claims. alg "none" gives an empty signature; "HS256" uses hsKey.
func rawToken(t *testing.T, k SigningKey, header map[string]any, claims any, hsKey []byte) string {
	t.Helper()
	hb, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(hb) + "." + b64(cb)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	switch header["alg"] {
	case "none":
	case "HS256":
		m := hmac.New(sha256.New, hsKey)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	case AlgRS256:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k.Private.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	case AlgES256:
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k.Private.(*ecdsa.PrivateKey), digest[:])
		if err == nil {
			sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		}
	default:
		t.Fatalf("rawToken: alg %v", header["alg"])
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// payloadOf returns the JSON claims of c as a map, for rawToken.
func payloadOf(c AccessClaims) map[string]any {
	return map[string]any{
		"iss": c.Issuer, "sub": c.Subject, "aud": c.Audience, "client_id": c.ClientID,
		"scope": c.Scope, "jti": c.JTI, "gid": c.GrantID,
		"iat": c.IssuedAt.Unix(), "nbf": c.IssuedAt.Unix(), "exp": c.Expiry.Unix(),
	}
}

func TestSignVerifyAccessToken(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		t.Run(alg, func(t *testing.T) {
			k := testKey(t, alg, 0)
			ks := mustKeySet(t, k)
			want := testAccessClaims(testNow)
			tok, err := ks.SignAccessToken(want)
			if err != nil {
				t.Fatalf("SignAccessToken() error = %v", err)
			}

			// Header: RFC 9068 §2.1.
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("token has %d parts", len(parts))
			}
			var header map[string]any
			hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
			if err := json.Unmarshal(hb, &header); err != nil {
				t.Fatal(err)
			}
			if header["typ"] != "at+jwt" || header["kid"] != k.ID || header["alg"] != alg || len(header) != 3 {
				t.Errorf("header = %v, want typ at+jwt, kid %s, alg %s only", header, k.ID, alg)
			}

			// Claims: RFC 9068 §2.2.
			var claims map[string]any
			cb, _ := base64.RawURLEncoding.DecodeString(parts[1])
			if err := json.Unmarshal(cb, &claims); err != nil {
				t.Fatal(err)
			}
			for name, v := range map[string]any{
				"iss": testIssuer, "sub": "user-123", "client_id": "agpt_client", "scope": "openid email read",
				"jti": "jti-1", "gid": "grant-9", "aud": "https://auth.example.com/gw/orders",
				"iat": float64(testNow.Unix()), "nbf": float64(testNow.Unix()), "exp": float64(testNow.Add(time.Hour).Unix()),
				"email": "user@example.com",
			} {
				if claims[name] != v {
					t.Errorf("claim %s = %v, want %v", name, claims[name], v)
				}
			}

			got, err := ks.VerifyAccessToken(tok, testNow.Add(time.Minute), testIssuer)
			if err != nil {
				t.Fatalf("VerifyAccessToken() error = %v", err)
			}
			want.NotBefore = want.IssuedAt
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("VerifyAccessToken() = %+v, want %+v", got, want)
			}
			if !got.HasAudience("https://auth.example.com/gw/orders") || got.HasAudience("https://auth.example.com/gw/other") || got.HasAudience("") {
				t.Errorf("HasAudience() wrong for %v", got.Audience)
			}
		})
	}
}

func TestSignAccessTokenOptionalClaims(t *testing.T) {
	ks := mustKeySet(t, testKey(t, AlgES256, 0))
	c := testAccessClaims(testNow)
	c.GrantID, c.Email, c.Scope = "", "", "" // client_credentials without scope
	c.Audience = []string{"https://a.example", "https://b.example"}
	tok, err := ks.SignAccessToken(c)
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	cb, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	_ = json.Unmarshal(cb, &claims)
	for _, absent := range []string{"gid", "email", "scope"} {
		if _, ok := claims[absent]; ok {
			t.Errorf("claim %q present, want omitted", absent)
		}
	}
	got, err := ks.VerifyAccessToken(tok, testNow, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	if !got.HasAudience("https://b.example") || got.GrantID != "" {
		t.Errorf("VerifyAccessToken() = %+v", got)
	}
}

func TestSignAccessTokenRequiresClaims(t *testing.T) {
	ks := mustKeySet(t, testKey(t, AlgES256, 0))
	tests := []struct {
		name   string
		modify func(*AccessClaims)
	}{
		{"iss", func(c *AccessClaims) { c.Issuer = "" }},
		{"sub", func(c *AccessClaims) { c.Subject = "" }},
		{"aud", func(c *AccessClaims) { c.Audience = nil }},
		{"empty aud", func(c *AccessClaims) { c.Audience = []string{""} }},
		{"client_id", func(c *AccessClaims) { c.ClientID = "" }},
		{"jti", func(c *AccessClaims) { c.JTI = "" }},
		{"iat", func(c *AccessClaims) { c.IssuedAt = time.Time{} }},
		{"exp", func(c *AccessClaims) { c.Expiry = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testAccessClaims(testNow)
			tt.modify(&c)
			if tok, err := ks.SignAccessToken(c); err == nil {
				t.Errorf("SignAccessToken() = %q, want error", tok)
			}
		})
	}
}

func TestVerifyAccessTokenRefuses(t *testing.T) {
	k := testKey(t, AlgRS256, 0)
	ks := mustKeySet(t, k)
	good, err := ks.SignAccessToken(testAccessClaims(testNow))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")

	// Tampered signature: flip one bit in the middle of the signature bytes.
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[len(sig)/2] ^= 0x01
	tamperedSig := parts[0] + "." + parts[1] + "." + b64(sig)

	// Tampered claims: another subject under the original signature.
	forged := payloadOf(testAccessClaims(testNow))
	forged["sub"] = "admin"
	fb, _ := json.Marshal(forged)
	tamperedClaims := parts[0] + "." + b64(fb) + "." + parts[2]

	// Another key set's key, and another key claiming our kid.
	other := mustKeySet(t, testKey(t, AlgRS256, 1))
	fromOther, _ := other.SignAccessToken(testAccessClaims(testNow))
	impostor := mustKeySet(t, SigningKey{ID: k.ID, Alg: AlgRS256, Private: testKey(t, AlgRS256, 1).Private})
	withOurKid, _ := impostor.SignAccessToken(testAccessClaims(testNow))

	// An ID token from the same key must not pass as an access token.
	idToken, _ := ks.SignIDToken(IDClaims{Issuer: testIssuer, Subject: "user-123", Audience: "agpt_client", IssuedAt: testNow, Expiry: testNow.Add(time.Hour)})
	assertion, _ := ks.SignAssertion(payloadOf(testAccessClaims(testNow)))

	hdr := func(typ any) map[string]any {
		h := map[string]any{"alg": AlgRS256, "kid": k.ID}
		if typ != nil {
			h["typ"] = typ
		}
		return h
	}
	claims := payloadOf(testAccessClaims(testNow))
	without := func(name string) map[string]any {
		c := payloadOf(testAccessClaims(testNow))
		delete(c, name)
		return c
	}
	with := func(name string, v any) map[string]any {
		c := payloadOf(testAccessClaims(testNow))
		c[name] = v
		return c
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(k.Private.Public())

	tests := []struct {
		name  string
		token string
		now   time.Time
		iss   string
		want  string // substring of the description
	}{
		{"empty", "", testNow, testIssuer, "malformed"},
		{"garbage", "not.a.jwt", testNow, testIssuer, "malformed"},
		{"two parts", parts[0] + "." + parts[1], testNow, testIssuer, "malformed"},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, testNow, testIssuer, "malformed"},
		{"oversized", good + strings.Repeat("A", maxTokenLength), testNow, testIssuer, "malformed"},
		{"tampered signature", tamperedSig, testNow, testIssuer, "signature"},
		{"tampered claims", tamperedClaims, testNow, testIssuer, "signature"},
		{"alg none", rawToken(t, k, map[string]any{"alg": "none", "typ": "at+jwt", "kid": k.ID}, claims, nil), testNow, testIssuer, "algorithm"},
		{"alg HS256 with public key", rawToken(t, k, map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": k.ID}, claims, pubDER), testNow, testIssuer, "algorithm"},
		{"alg header mismatch", rawToken(t, testKey(t, AlgES256, 0), map[string]any{"alg": AlgES256, "typ": "at+jwt", "kid": k.ID}, claims, nil), testNow, testIssuer, "algorithm does not match"},
		{"typ JWT (ID token)", idToken, testNow, testIssuer, "not an access token"},
		{"typ JWT (assertion)", assertion, testNow, testIssuer, "not an access token"},
		{"typ id_token", rawToken(t, k, hdr("id_token"), claims, nil), testNow, testIssuer, "not an access token"},
		{"typ missing", rawToken(t, k, hdr(nil), claims, nil), testNow, testIssuer, "not an access token"},
		{"typ empty", rawToken(t, k, hdr(""), claims, nil), testNow, testIssuer, "not an access token"},
		{"typ not a string", rawToken(t, k, hdr(1), claims, nil), testNow, testIssuer, "not an access token"},
		{"typ at+jwt suffix", rawToken(t, k, hdr("at+jwt2"), claims, nil), testNow, testIssuer, "not an access token"},
		{"unknown kid", fromOther, testNow, testIssuer, "unknown key"},
		{"missing kid", rawToken(t, k, map[string]any{"alg": AlgRS256, "typ": "at+jwt"}, claims, nil), testNow, testIssuer, "unknown key"},
		{"other key with our kid", withOurKid, testNow, testIssuer, "signature"},
		{"expired exactly at exp", good, testNow.Add(time.Hour), testIssuer, "expired"},
		{"expired later", good, testNow.Add(2 * time.Hour), testIssuer, "expired"},
		{"nbf in the future", rawToken(t, k, hdr("at+jwt"), with("nbf", testNow.Add(time.Minute).Unix()), nil), testNow, testIssuer, "not valid yet"},
		{"nbf just past leeway", rawToken(t, k, hdr("at+jwt"), with("nbf", testNow.Add(ClockLeeway+time.Second).Unix()), nil), testNow, testIssuer, "not valid yet"},
		{"wrong issuer", good, testNow, "https://evil.example.com", "another issuer"},
		{"issuer trailing slash", good, testNow, testIssuer + "/", "another issuer"},
		{"issuer case", good, testNow, "https://Auth.example.com", "another issuer"},
		{"empty expected issuer", good, testNow, "", "another issuer"},
		{"no exp", rawToken(t, k, hdr("at+jwt"), without("exp"), nil), testNow, testIssuer, "no expiry"},
		{"no iat", rawToken(t, k, hdr("at+jwt"), without("iat"), nil), testNow, testIssuer, "required claim"},
		{"no jti", rawToken(t, k, hdr("at+jwt"), without("jti"), nil), testNow, testIssuer, "required claim"},
		{"no sub", rawToken(t, k, hdr("at+jwt"), without("sub"), nil), testNow, testIssuer, "required claim"},
		{"no client_id", rawToken(t, k, hdr("at+jwt"), without("client_id"), nil), testNow, testIssuer, "required claim"},
		{"empty sub", rawToken(t, k, hdr("at+jwt"), with("sub", ""), nil), testNow, testIssuer, "required claim"},
		{"exp not a number", rawToken(t, k, hdr("at+jwt"), with("exp", "tomorrow"), nil), testNow, testIssuer, "claims are malformed"},
		{"aud not a string", rawToken(t, k, hdr("at+jwt"), with("aud", 7), nil), testNow, testIssuer, "claims are malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ks.VerifyAccessToken(tt.token, tt.now, tt.iss)
			if err == nil {
				t.Fatalf("VerifyAccessToken() = %+v, want error", c)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("VerifyAccessToken() error = %v, want invalid_token", err)
			}
			var oe Error
			errors.As(err, &oe)
			if !strings.Contains(oe.Description, tt.want) {
				t.Errorf("description = %q, want it to contain %q", oe.Description, tt.want)
			}
			if tt.token != "" && (strings.Contains(err.Error(), tt.token) || strings.Contains(err.Error(), parts[2])) {
				t.Errorf("error echoes the token: %v", err)
			}
			if c.Subject != "" || c.JTI != "" {
				t.Errorf("claims returned with an error: %+v", c)
			}
		})
	}
}

func TestVerifyAccessTokenAccepts(t *testing.T) {
	k := testKey(t, AlgES256, 0)
	ks := mustKeySet(t, k)
	hdr := func(typ string) map[string]any { return map[string]any{"alg": AlgES256, "kid": k.ID, "typ": typ} }
	claims := payloadOf(testAccessClaims(testNow))
	withNbf := payloadOf(testAccessClaims(testNow))
	withNbf["nbf"] = testNow.Add(ClockLeeway).Unix()
	noNbf := payloadOf(testAccessClaims(testNow))
	delete(noNbf, "nbf")
	arrayAud := payloadOf(testAccessClaims(testNow))
	arrayAud["aud"] = []string{"https://auth.example.com/gw/orders", "https://other.example"}

	tests := []struct {
		name  string
		token string
		now   time.Time
	}{
		{"typ at+jwt", rawToken(t, k, hdr("at+jwt"), claims, nil), testNow},
		{"typ upper case", rawToken(t, k, hdr("AT+JWT"), claims, nil), testNow},
		{"typ application/at+jwt", rawToken(t, k, hdr("application/at+jwt"), claims, nil), testNow},
		{"typ Application/AT+JWT", rawToken(t, k, hdr("Application/AT+JWT"), claims, nil), testNow},
		{"nbf within leeway", rawToken(t, k, hdr("at+jwt"), withNbf, nil), testNow},
		{"nbf absent", rawToken(t, k, hdr("at+jwt"), noNbf, nil), testNow},
		{"one second before exp", rawToken(t, k, hdr("at+jwt"), claims, nil), testNow.Add(time.Hour - time.Second)},
		{"aud array", rawToken(t, k, hdr("at+jwt"), arrayAud, nil), testNow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ks.VerifyAccessToken(tt.token, tt.now, testIssuer)
			if err != nil {
				t.Fatalf("VerifyAccessToken() error = %v", err)
			}
			if !c.HasAudience("https://auth.example.com/gw/orders") || c.Subject != "user-123" {
				t.Errorf("VerifyAccessToken() = %+v", c)
			}
		})
	}
}

func TestVerifyAccessTokenAfterRotation(t *testing.T) {
	oldKey := testKey(t, AlgRS256, 0)
	newKey := testKey(t, AlgES256, 0)
	before := mustKeySet(t, oldKey)
	tok, err := before.SignAccessToken(testAccessClaims(testNow))
	if err != nil {
		t.Fatal(err)
	}
	// During the overlap the old key verifies; after it is dropped it does not.
	overlap := mustKeySet(t, newKey, oldKey)
	if _, err := overlap.VerifyAccessToken(tok, testNow, testIssuer); err != nil {
		t.Errorf("token from the previous key refused during overlap: %v", err)
	}
	if overlap.Active().ID != newKey.ID {
		t.Errorf("Active() = %v, want %v", overlap.Active(), newKey)
	}
	fresh, _ := overlap.SignAccessToken(testAccessClaims(testNow))
	if _, err := before.VerifyAccessToken(fresh, testNow, testIssuer); err == nil {
		t.Error("old key set verified a token from a key it does not know")
	}
	after := mustKeySet(t, newKey)
	if _, err := after.VerifyAccessToken(tok, testNow, testIssuer); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("token from a retired key: err = %v, want invalid_token", err)
	}
}

func TestVerifyAccessTokenNilKeySet(t *testing.T) {
	var ks *KeySet
	if _, err := ks.VerifyAccessToken("x.y.z", testNow, testIssuer); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("nil KeySet: err = %v, want invalid_token", err)
	}
	if _, err := ks.SignAccessToken(testAccessClaims(testNow)); err == nil {
		t.Error("nil KeySet signed a token")
	}
}

func TestSignIDToken(t *testing.T) {
	for _, alg := range []string{AlgRS256, AlgES256} {
		k := testKey(t, alg, 0)
		ks := mustKeySet(t, k)
		at, _ := ks.SignAccessToken(testAccessClaims(testNow))
		tests := []struct {
			name    string
			claims  IDClaims
			want    map[string]any
			absent  []string
			wantErr bool
		}{
			{
				name: "full",
				claims: IDClaims{
					Issuer: testIssuer, Subject: "user-123", Audience: "agpt_client", Nonce: "n-0S6",
					Email: "user@example.com", EmailVerified: true, AuthTime: testNow.Add(-time.Minute),
					IssuedAt: testNow, Expiry: testNow.Add(time.Hour), AccessTokenHash: AccessTokenHash(at, alg),
				},
				want: map[string]any{
					"iss": testIssuer, "sub": "user-123", "aud": "agpt_client", "nonce": "n-0S6",
					"email": "user@example.com", "email_verified": true,
					"auth_time": float64(testNow.Add(-time.Minute).Unix()), "iat": float64(testNow.Unix()),
					"exp": float64(testNow.Add(time.Hour).Unix()), "at_hash": AccessTokenHash(at, alg),
				},
			},
			{
				name:   "minimal",
				claims: IDClaims{Issuer: testIssuer, Subject: "user-123", Audience: "agpt_client", IssuedAt: testNow, Expiry: testNow.Add(time.Hour), EmailVerified: true},
				want:   map[string]any{"iss": testIssuer, "sub": "user-123", "aud": "agpt_client"},
				absent: []string{"nonce", "email", "email_verified", "auth_time", "at_hash"},
			},
			{
				name:   "unverified email",
				claims: IDClaims{Issuer: testIssuer, Subject: "u", Audience: "c", IssuedAt: testNow, Expiry: testNow.Add(time.Hour), Email: "a@b.example"},
				want:   map[string]any{"email": "a@b.example", "email_verified": false},
			},
			{name: "no issuer", claims: IDClaims{Subject: "u", Audience: "c", IssuedAt: testNow, Expiry: testNow}, wantErr: true},
			{name: "no audience", claims: IDClaims{Issuer: testIssuer, Subject: "u", IssuedAt: testNow, Expiry: testNow}, wantErr: true},
			{name: "no expiry", claims: IDClaims{Issuer: testIssuer, Subject: "u", Audience: "c", IssuedAt: testNow}, wantErr: true},
		}
		for _, tt := range tests {
			t.Run(alg+"/"+tt.name, func(t *testing.T) {
				tok, err := ks.SignIDToken(tt.claims)
				if tt.wantErr {
					if err == nil {
						t.Fatalf("SignIDToken() = %q, want error", tok)
					}
					return
				}
				if err != nil {
					t.Fatalf("SignIDToken() error = %v", err)
				}
				header, claims := decodeJWT(t, tok)
				if header["typ"] != "JWT" || header["kid"] != k.ID || header["alg"] != alg {
					t.Errorf("header = %v", header)
				}
				for name, v := range tt.want {
					if claims[name] != v {
						t.Errorf("claim %s = %v, want %v", name, claims[name], v)
					}
				}
				for _, name := range tt.absent {
					if _, ok := claims[name]; ok {
						t.Errorf("claim %s present, want omitted", name)
					}
				}
				verifyWithJWKS(t, ks, tok)
			})
		}
	}
}

func TestAccessTokenHash(t *testing.T) {
	// OpenID Connect Core Appendix A.3 / A.4 example: the access token
	// "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" has at_hash
	// "77QmUPtjPfzWtF2AnpK9RQ" with RS256.
	tests := []struct {
		token, alg, want string
	}{
		{"jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256", "77QmUPtjPfzWtF2AnpK9RQ"},
		{"jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "ES256", "77QmUPtjPfzWtF2AnpK9RQ"},
		{"x", "HS256", ""},
		{"x", "none", ""},
	}
	for _, tt := range tests {
		if got := AccessTokenHash(tt.token, tt.alg); got != tt.want {
			t.Errorf("AccessTokenHash(%q, %q) = %q, want %q", tt.token, tt.alg, got, tt.want)
		}
	}
	if got := AccessTokenHash("x", "RS384"); len(got) != 32 { // 24 bytes base64url
		t.Errorf("AccessTokenHash(RS384) = %q, want 32 characters", got)
	}
	if got := AccessTokenHash("x", "ES512"); len(got) != 43 { // 32 bytes
		t.Errorf("AccessTokenHash(ES512) = %q, want 43 characters", got)
	}
}

func TestSignAssertion(t *testing.T) {
	k := testKey(t, AlgES256, 0)
	ks := mustKeySet(t, k)
	tok, err := ks.SignAssertion(map[string]any{
		"iss": testIssuer, "aud": "https://upstream.example", "sub": "user-123",
		"iat": testNow.Unix(), "exp": testNow.Add(time.Minute).Unix(), "credits": 42,
	})
	if err != nil {
		t.Fatalf("SignAssertion() error = %v", err)
	}
	header, claims := decodeJWT(t, tok)
	if header["typ"] != "JWT" || header["kid"] != k.ID {
		t.Errorf("header = %v", header)
	}
	if claims["sub"] != "user-123" || claims["credits"] != float64(42) {
		t.Errorf("claims = %v", claims)
	}
	verifyWithJWKS(t, ks, tok)

	if _, err := ks.SignAssertion(map[string]any{"sub": "x"}); err == nil {
		t.Error("SignAssertion() without exp succeeded")
	}
	if _, err := ks.SignAssertion(map[string]any{"exp": 1, "bad": make(chan int)}); err == nil {
		t.Error("SignAssertion() with an unencodable claim succeeded")
	}
}

// TestKeySetConcurrent is for -race: one KeySet used from many goroutines.
func TestKeySetConcurrent(t *testing.T) {
	ks := mustKeySet(t, testKey(t, AlgES256, 0), testKey(t, AlgRS256, 0))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			c := testAccessClaims(testNow)
			c.JTI = fmt.Sprint("jti-", i)
			for range 20 {
				tok, err := ks.SignAccessToken(c)
				if err != nil {
					errs <- err
					return
				}
				got, err := ks.VerifyAccessToken(tok, testNow, testIssuer)
				if err != nil || got.JTI != c.JTI {
					errs <- fmt.Errorf("verify: %v (%s)", err, got.JTI)
					return
				}
				if _, err := ks.SignIDToken(IDClaims{Issuer: testIssuer, Subject: "u", Audience: "c", IssuedAt: testNow, Expiry: testNow.Add(time.Hour)}); err != nil {
					errs <- err
					return
				}
				_ = ks.JWKS()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func decodeJWT(t *testing.T, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// verifyWithJWKS checks tok's signature with the published JWKS, the way a
// relying party would.
func verifyWithJWKS(t *testing.T, ks *KeySet, tok string) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(ks.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(obj.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys for kid %q", len(keys), obj.Signatures[0].Header.KeyID)
	}
	if _, err := obj.Verify(keys[0]); err != nil {
		t.Errorf("signature does not verify with the JWKS: %v", err)
	}
}

package upstream

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Own-login limits: a login request lives 5 minutes, an assertion at most 5 minutes.
const (
	LoginRequestTTL    = 5 * time.Minute
	MaxAssertionTTL    = 5 * time.Minute
	assertionLeeway    = 30 * time.Second
	maxAssertionLength = 8 << 10
)

// LoginRequest is what AuthGPTs sends to a developer's own login page, as an HS256 JWT
// under the app's signing secret (the page may verify it with the same secret): who
// asks, for which page, the state and nonce to send back, and where to send the browser.
type LoginRequest struct {
	Issuer            string `json:"iss"`           // this server
	Audience          string `json:"aud"`           // the own_login_url
	State             string `json:"state"`         // send back as the state query parameter
	Nonce             string `json:"nonce"`         // put into the assertion's nonce claim
	ReturnTo          string `json:"return_to"`     // <base>/login/own/callback
	AssertionAudience string `json:"assertion_aud"` // the aud the assertion must carry
	IssuedAt          int64  `json:"iat"`
	Expiry            int64  `json:"exp"`
}

// SignLoginRequest signs r with secret (HS256).
func SignLoginRequest(secret []byte, r LoginRequest) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(s).Claims(r).Serialize()
}

// Assertion is the verified claim set of a developer's sign-in assertion.
type Assertion struct {
	Subject       string
	Email         string
	EmailVerified bool
	JTI           string
	Expiry        time.Time
}

// Assertion errors; their messages are shown on the error page (never the token).
var (
	ErrAssertionSignature = errors.New("The sign-in assertion is not signed with this app's signing secret or registered key.")
	ErrAssertionExpired   = errors.New("The sign-in assertion has expired or lives longer than 5 minutes.")
	ErrAssertionAudience  = errors.New("The sign-in assertion is for another app (aud).")
	ErrAssertionNonce     = errors.New("The sign-in assertion does not carry this sign-in's nonce.")
	ErrAssertionClaims    = errors.New("The sign-in assertion lacks sub or jti, or they are too long.")
)

// VerifyAssertion checks an assertion from the app's own login page: HS256 under secret,
// or RS256/ES256 under the developer's registered public JWK (publicJWK "" = none);
// aud = audience; exp in the future and at most 5 minutes after now (and after iat);
// nonce equal to the sign-in's; sub and jti present. The caller makes jti single use.
func VerifyAssertion(raw string, secret []byte, publicJWK, audience, nonce string, now time.Time) (Assertion, error) {
	if raw == "" || len(raw) > maxAssertionLength {
		return Assertion{}, ErrAssertionSignature
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.HS256, jose.RS256, jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return Assertion{}, ErrAssertionSignature
	}
	var key any
	switch tok.Headers[0].Algorithm {
	case string(jose.HS256):
		if len(secret) == 0 {
			return Assertion{}, ErrAssertionSignature
		}
		key = secret
	default:
		if publicJWK == "" {
			return Assertion{}, ErrAssertionSignature
		}
		var jwk jose.JSONWebKey
		if err := json.Unmarshal([]byte(publicJWK), &jwk); err != nil || !jwk.IsPublic() {
			return Assertion{}, ErrAssertionSignature
		}
		key = jwk.Key
	}
	var std jwt.Claims
	var extra struct {
		Nonce         string `json:"nonce"`
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
	}
	if err := tok.Claims(key, &std, &extra); err != nil {
		return Assertion{}, ErrAssertionSignature
	}
	if !std.Audience.Contains(audience) {
		return Assertion{}, ErrAssertionAudience
	}
	if std.Expiry == nil {
		return Assertion{}, ErrAssertionExpired
	}
	exp := std.Expiry.Time()
	start := now
	if std.IssuedAt != nil && std.IssuedAt.Time().Before(now) {
		start = std.IssuedAt.Time()
	}
	if !now.Before(exp) || exp.Sub(start) > MaxAssertionTTL+assertionLeeway {
		return Assertion{}, ErrAssertionExpired
	}
	if std.NotBefore != nil && now.Add(assertionLeeway).Before(std.NotBefore.Time()) {
		return Assertion{}, ErrAssertionExpired
	}
	if extra.Nonce == "" || !hmac.Equal([]byte(extra.Nonce), []byte(nonce)) {
		return Assertion{}, ErrAssertionNonce
	}
	if std.Subject == "" || len(std.Subject) > 255 || std.ID == "" || len(std.ID) > 255 || strings.ContainsAny(std.Subject, "\x00") {
		return Assertion{}, ErrAssertionClaims
	}
	return Assertion{Subject: std.Subject, Email: extra.Email, EmailVerified: extra.EmailVerified, JTI: std.ID, Expiry: exp}, nil
}

// ValidPublicJWK checks a developer-registered key: a public RSA (≥ 2048 bits) or EC
// P-256 JWK. "" (none) is valid.
func ValidPublicJWK(s string) error {
	if s == "" {
		return nil
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal([]byte(s), &jwk); err != nil {
		return errors.New("Paste a JSON Web Key (JWK) object, like {\"kty\":\"EC\",…}.")
	}
	if !jwk.IsPublic() {
		return errors.New("That key holds private material: paste only the public JWK.")
	}
	if !jwk.Valid() {
		return errors.New("That JWK is not a valid public key.")
	}
	return nil
}

package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// GatewayAssertionUse is the token_use claim of a gateway assertion. Requiring it keeps
// any other JWT signed with the same keys (an ID token whose aud happens to equal an
// upstream URL) from passing as an assertion.
const GatewayAssertionUse = "gateway_assertion"

// GatewayAssertionMaxTTL bounds the lifetime of a gateway assertion.
const GatewayAssertionMaxTTL = 60 * time.Second

// GatewayAssertion is what the gateway tells the upstream about a call, in the signed JWT
// of the X-AuthGPTs-Assertion header: the upstream verifies it with the server's JWKS to
// prove the call came through the gateway and to learn who made it.
type GatewayAssertion struct {
	Issuer   string    // iss: the AuthGPTs base URL
	Audience string    // aud: the upstream base URL of the app
	Subject  string    // sub: the user ID, or the client ID for client_credentials
	ClientID string    // client_id
	Scope    string    // scope: space-delimited
	Email    string    // email: only with the email scope
	JTI      string    // jti: unique per assertion
	IssuedAt time.Time // iat
	Expiry   time.Time // exp: at most GatewayAssertionMaxTTL after iat
}

type assertionPayload struct {
	Issuer   string           `json:"iss"`
	Audience string           `json:"aud"`
	Subject  string           `json:"sub"`
	ClientID string           `json:"client_id"`
	Scope    string           `json:"scope,omitempty"`
	Email    string           `json:"email,omitempty"`
	JTI      string           `json:"jti"`
	Use      string           `json:"token_use"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	Expiry   *jwt.NumericDate `json:"exp"`
}

// SignGatewayAssertion signs a as a JWT (typ "JWT") with the active key.
func (ks *KeySet) SignGatewayAssertion(a GatewayAssertion) (string, error) {
	if a.Issuer == "" || a.Audience == "" || a.Subject == "" || a.ClientID == "" || a.JTI == "" ||
		a.IssuedAt.IsZero() || a.Expiry.IsZero() {
		return "", errors.New("oauth: sign gateway assertion: iss, aud, sub, client_id, jti, iat and exp are required")
	}
	if a.Expiry.Sub(a.IssuedAt) > GatewayAssertionMaxTTL {
		return "", errors.New("oauth: sign gateway assertion: lifetime above GatewayAssertionMaxTTL")
	}
	if err := ks.canSign(); err != nil {
		return "", err
	}
	payload, err := json.Marshal(assertionPayload{
		Issuer: a.Issuer, Audience: a.Audience, Subject: a.Subject, ClientID: a.ClientID,
		Scope: a.Scope, Email: a.Email, JTI: a.JTI,
		Use: GatewayAssertionUse, IssuedAt: jwt.NewNumericDate(a.IssuedAt), Expiry: jwt.NewNumericDate(a.Expiry),
	})
	if err != nil {
		return "", fmt.Errorf("oauth: sign gateway assertion: %w", err)
	}
	return sign(ks.jwtSigner, payload)
}

// VerifyGatewayAssertion verifies a gateway assertion: alg RS256/ES256 with a kid of this
// KeySet, typ "JWT", token_use GatewayAssertionUse, iss equal to issuer, aud equal to
// audience (the upstream base URL), now before exp (no leeway), iat not more than
// ClockLeeway in the future and the lifetime within GatewayAssertionMaxTTL. Errors are
// invalid_token with a fixed description.
func (ks *KeySet) VerifyGatewayAssertion(token string, now time.Time, issuer, audience string) (GatewayAssertion, error) {
	if ks == nil || len(ks.keys) == 0 {
		return GatewayAssertion{}, invalidToken("No key is available to verify the assertion.")
	}
	if token == "" || len(token) > maxTokenLength {
		return GatewayAssertion{}, invalidToken("The assertion is malformed.")
	}
	obj, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil || len(obj.Signatures) != 1 {
		return GatewayAssertion{}, invalidToken("The assertion is malformed or uses a refused algorithm.")
	}
	header := obj.Signatures[0].Protected
	if typ, _ := header.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "JWT") {
		return GatewayAssertion{}, invalidToken("The token is not a gateway assertion.")
	}
	key, ok := ks.keys[header.KeyID]
	if !ok || header.Algorithm != string(key.alg) {
		return GatewayAssertion{}, invalidToken("The assertion is signed with an unknown key.")
	}
	payload, err := obj.Verify(key.pub)
	if err != nil {
		return GatewayAssertion{}, invalidToken("The assertion signature is invalid.")
	}
	var p assertionPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return GatewayAssertion{}, invalidToken("The assertion claims are malformed.")
	}
	switch {
	case p.Use != GatewayAssertionUse:
		return GatewayAssertion{}, invalidToken("The token is not a gateway assertion.")
	case issuer == "" || p.Issuer != issuer:
		return GatewayAssertion{}, invalidToken("The assertion was issued by another issuer.")
	case audience == "" || p.Audience != audience:
		return GatewayAssertion{}, invalidToken("The assertion is meant for another audience.")
	case p.Expiry == nil || p.IssuedAt == nil:
		return GatewayAssertion{}, invalidToken("The assertion is missing a required claim.")
	case !now.Before(p.Expiry.Time()):
		return GatewayAssertion{}, invalidToken("The assertion has expired.")
	case now.Add(ClockLeeway).Before(p.IssuedAt.Time()):
		return GatewayAssertion{}, invalidToken("The assertion is not valid yet.")
	case p.Expiry.Time().Sub(p.IssuedAt.Time()) > GatewayAssertionMaxTTL:
		return GatewayAssertion{}, invalidToken("The assertion lives too long.")
	case p.Subject == "" || p.ClientID == "" || p.JTI == "":
		return GatewayAssertion{}, invalidToken("The assertion is missing a required claim.")
	}
	return GatewayAssertion{
		Issuer: p.Issuer, Audience: p.Audience, Subject: p.Subject, ClientID: p.ClientID,
		Scope: p.Scope, Email: p.Email, JTI: p.JTI,
		IssuedAt: p.IssuedAt.Time().UTC(), Expiry: p.Expiry.Time().UTC(),
	}, nil
}

// HasKey reports whether the set holds a verification key with that kid.
func (ks *KeySet) HasKey(kid string) bool {
	if ks == nil {
		return false
	}
	_, ok := ks.keys[kid]
	return ok
}

// TokenKeyID returns the kid in the protected header of a compact JWS, or "" when the
// token does not parse. It verifies nothing: resource servers use it to decide whether
// to refetch a JWKS before verifying.
func TokenKeyID(token string) string {
	if len(token) > maxTokenLength {
		return ""
	}
	obj, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil || len(obj.Signatures) != 1 {
		return ""
	}
	return obj.Signatures[0].Protected.KeyID
}

package oauth

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// private_key_jwt client authentication (RFC 7523 §2.2, §3; OpenID Connect Core §9):
// the client signs a short JWT with a key published at its jwks_uri and sends it as
// client_assertion. ChatGPT's client ID metadata documents use it (AI-CLIENTS.md C1).

// ClientAssertionType is the only client_assertion_type accepted.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxClientAssertionLifetime bounds how far in the future an assertion's exp may be: its
// jti is remembered until then, so the bound also bounds that memory.
const MaxClientAssertionLifetime = time.Hour

// clientAssertionAlgs are the signature algorithms accepted for client assertions;
// "none" and HMAC (which would need a shared secret) are not among them.
var clientAssertionAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// ClientAssertion is a verified assertion: its jti must be used once, until Expiry.
type ClientAssertion struct {
	JTI    string
	Expiry time.Time
}

// ClientAssertionKeyID returns the kid of an assertion's header ("" when absent or the
// assertion is malformed), so the caller can refetch a JWKS that lacks it.
func ClientAssertionKeyID(assertion string) string {
	if len(assertion) > maxTokenLength {
		return ""
	}
	obj, err := jose.ParseSignedCompact(assertion, clientAssertionAlgs)
	if err != nil || len(obj.Signatures) != 1 {
		return ""
	}
	return obj.Signatures[0].Protected.KeyID
}

func badAssertion(description string) error {
	return ErrInvalidClient.WithDescription(description)
}

// VerifyClientAssertion checks a client assertion against the client's JWKS: one
// signature by a key of the set (by kid when the header names one), iss and sub equal to
// clientID, aud naming one of audiences (the token endpoint or the issuer), exp present,
// in the future and at most MaxClientAssertionLifetime away, nbf and iat not in the
// future (ClockLeeway), and a jti. Errors are invalid_client with a fixed description.
func VerifyClientAssertion(assertion string, jwks []byte, clientID string, audiences []string, now time.Time) (ClientAssertion, error) {
	if assertion == "" || len(assertion) > maxTokenLength {
		return ClientAssertion{}, badAssertion("The client assertion is malformed.")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return ClientAssertion{}, badAssertion("The client's JWKS could not be read.")
	}
	tok, err := jwt.ParseSigned(assertion, clientAssertionAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return ClientAssertion{}, badAssertion("The client assertion is malformed or uses a refused algorithm.")
	}
	h := tok.Headers[0]
	var claims jwt.Claims
	verified := false
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") || (h.KeyID != "" && k.KeyID != h.KeyID) {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != h.Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	switch {
	case !verified:
		return ClientAssertion{}, badAssertion("The client assertion signature does not verify with the client's keys.")
	case claims.Issuer != clientID || claims.Subject != clientID:
		return ClientAssertion{}, badAssertion("The client assertion's iss and sub must be the client_id.")
	case !slices.ContainsFunc(audiences, func(a string) bool { return a != "" && claims.Audience.Contains(a) }):
		return ClientAssertion{}, badAssertion("The client assertion's aud must be the token endpoint or the issuer.")
	case claims.Expiry == nil:
		return ClientAssertion{}, badAssertion("The client assertion has no exp.")
	case !now.Before(claims.Expiry.Time().Add(ClockLeeway)):
		return ClientAssertion{}, badAssertion("The client assertion has expired.")
	case claims.Expiry.Time().Sub(now) > MaxClientAssertionLifetime:
		return ClientAssertion{}, badAssertion("The client assertion lives longer than an hour.")
	case claims.NotBefore != nil && now.Add(ClockLeeway).Before(claims.NotBefore.Time()):
		return ClientAssertion{}, badAssertion("The client assertion is not valid yet.")
	case claims.IssuedAt != nil && now.Add(ClockLeeway).Before(claims.IssuedAt.Time()):
		return ClientAssertion{}, badAssertion("The client assertion was issued in the future.")
	case claims.ID == "" || len(claims.ID) > 256:
		return ClientAssertion{}, badAssertion("The client assertion needs a jti.")
	}
	return ClientAssertion{JTI: claims.ID, Expiry: claims.Expiry.Time().Add(ClockLeeway)}, nil
}

// UnverifiedIssuer returns the iss claim of an assertion without verifying anything, so
// that a token request naming its client only in the assertion (RFC 7523 §3) can find
// the keys to verify it with; "" when the assertion does not parse.
func UnverifiedIssuer(assertion string) string {
	if len(assertion) > maxTokenLength {
		return ""
	}
	tok, err := jwt.ParseSigned(assertion, clientAssertionAlgs)
	if err != nil {
		return ""
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return ""
	}
	return c.Issuer
}

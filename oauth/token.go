package oauth

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// accessTokenType is the JOSE "typ" of access tokens, RFC 9068 §2.1.
const accessTokenType = "at+jwt"

// ClockLeeway is the clock skew tolerated on "nbf" when verifying an access
// token. "exp" gets none: a token is rejected from its expiry second on.
const ClockLeeway = 30 * time.Second

// maxTokenLength bounds the size of a token accepted for verification, so
// that an oversized header costs nothing to refuse.
const maxTokenLength = 16 << 10

// allowedAlgs are the only "alg" values accepted when parsing: "none", HMAC
// and everything else are refused before any key is looked at (RFC 8725 §3.1).
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// AccessClaims are the claims of an RFC 9068 JWT access token.
type AccessClaims struct {
	Issuer    string   // iss: the issuer, byte for byte (RFC 9068 §2.2)
	Subject   string   // sub: the user ID, or the client ID for client_credentials
	ClientID  string   // client_id (RFC 9068 §2.2, RFC 8693 §4.3)
	Scope     string   // scope: space-delimited (RFC 9068 §2.2.3)
	JTI       string   // jti: unique token ID, used for revocation
	GrantID   string   // gid: the grant the token hangs off; empty for client_credentials
	Audience  []string // aud: the resource(s), RFC 8707
	IssuedAt  time.Time
	Expiry    time.Time
	NotBefore time.Time // defaults to IssuedAt when signing
	Email     string    // email, optional
	// UpstreamSubject and IdP are set for a user from an app's identity source (OIDC,
	// GitHub, own login page): the token's "sub" is then the upstream subject, as the
	// API owner knows the user, "idp" the upstream issuer, and Subject (the local user
	// ID, which grants, credits and usage hang off) travels as "uid".
	UpstreamSubject string
	IdP             string
}

// PublicSubject is the token's "sub" claim: the upstream subject for a user from an
// identity source, else Subject.
func (c AccessClaims) PublicSubject() string {
	if c.UpstreamSubject != "" {
		return c.UpstreamSubject
	}
	return c.Subject
}

// HasAudience reports whether aud is one of the token's audiences. Resource
// servers must call it with their own resource URL (RFC 9068 §4, RFC 8707).
func (c AccessClaims) HasAudience(aud string) bool {
	return aud != "" && slices.Contains(c.Audience, aud)
}

// accessPayload is the JSON form of AccessClaims.
type accessPayload struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	ClientID  string           `json:"client_id"`
	Scope     string           `json:"scope,omitempty"`
	JTI       string           `json:"jti"`
	GrantID   string           `json:"gid,omitempty"`
	Email     string           `json:"email,omitempty"`
	UserID    string           `json:"uid,omitempty"` // the local user ID when sub is an upstream subject
	IdP       string           `json:"idp,omitempty"` // the upstream issuer of sub
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf,omitempty"`
	Expiry    *jwt.NumericDate `json:"exp"`
}

// SignAccessToken signs c as an RFC 9068 access token: header typ "at+jwt"
// and the active key's kid; claims iss, sub, aud, client_id, scope, jti, iat,
// nbf, exp, and gid when c.GrantID is set. iss, sub, aud, client_id, jti, iat
// and exp are required (RFC 9068 §2.2).
func (ks *KeySet) SignAccessToken(c AccessClaims) (string, error) {
	if err := ks.canSign(); err != nil {
		return "", err
	}
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"iss", c.Issuer != ""},
		{"sub", c.Subject != ""},
		{"aud", len(c.Audience) > 0 && !slices.Contains(c.Audience, "")},
		{"client_id", c.ClientID != ""},
		{"jti", c.JTI != ""},
		{"iat", !c.IssuedAt.IsZero()},
		{"exp", !c.Expiry.IsZero()},
	} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("oauth: sign access token: missing %s", strings.Join(missing, ", "))
	}
	nbf := c.NotBefore
	if nbf.IsZero() {
		nbf = c.IssuedAt
	}
	sub, uid := c.Subject, ""
	if c.UpstreamSubject != "" {
		if c.IdP == "" {
			return "", errors.New("oauth: sign access token: an upstream subject needs its idp")
		}
		sub, uid = c.UpstreamSubject, c.Subject
	}
	payload, err := json.Marshal(accessPayload{
		Issuer:    c.Issuer,
		Subject:   sub,
		UserID:    uid,
		IdP:       c.IdP,
		Audience:  jwt.Audience(c.Audience),
		ClientID:  c.ClientID,
		Scope:     c.Scope,
		JTI:       c.JTI,
		GrantID:   c.GrantID,
		Email:     c.Email,
		IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
		NotBefore: jwt.NewNumericDate(nbf),
		Expiry:    jwt.NewNumericDate(c.Expiry),
	})
	if err != nil {
		return "", fmt.Errorf("oauth: sign access token: %w", err)
	}
	return sign(ks.atSigner, payload)
}

// sign signs payload and returns the JWS compact serialization.
func sign(s jose.Signer, payload []byte) (string, error) {
	obj, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oauth: sign: %w", err)
	}
	return obj.CompactSerialize()
}

// invalidToken returns the invalid_token error for a failed verification.
// Descriptions are fixed strings: the token itself is never echoed.
func invalidToken(description string) error {
	return ErrInvalidToken.WithDescription(description)
}

// VerifyAccessToken verifies an access token issued by this server and
// returns its claims. It checks, in order (RFC 9068 §4, RFC 8725):
//
//   - compact JWS with alg RS256 or ES256 only ("none" and HMAC refused);
//   - typ "at+jwt" or "application/at+jwt", case-insensitively, so an ID token
//     or any other JWT signed by the same key is refused (RFC 9068 §4);
//   - a kid naming a key of this KeySet, with the same alg, and a valid
//     signature under it;
//   - iss equal to issuer byte for byte (RFC 9207-style: no normalisation);
//   - exp present and now < exp; nbf, when present, at most ClockLeeway
//     ahead of now;
//   - iat, jti, sub and client_id present.
//
// Every failure is an Error with code invalid_token and a short fixed
// description (errors.Is(err, ErrInvalidToken) holds). The audience is the
// caller's to check, with HasAudience.
func (ks *KeySet) VerifyAccessToken(token string, now time.Time, issuer string) (AccessClaims, error) {
	if ks == nil || len(ks.keys) == 0 {
		return AccessClaims{}, invalidToken("No key is available to verify the access token.")
	}
	if token == "" || len(token) > maxTokenLength {
		return AccessClaims{}, invalidToken("The access token is malformed.")
	}
	obj, err := jose.ParseSignedCompact(token, allowedAlgs)
	if err != nil || len(obj.Signatures) != 1 {
		return AccessClaims{}, invalidToken("The access token is malformed or uses a refused algorithm.")
	}
	header := obj.Signatures[0].Protected

	// RFC 9068 §4: resource servers MUST verify typ, preventing the use of
	// other JWTs (ID tokens, assertions) as access tokens.
	typ, _ := header.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, accessTokenType) && !strings.EqualFold(typ, "application/"+accessTokenType) {
		return AccessClaims{}, invalidToken("The token is not an access token.")
	}

	key, ok := ks.keys[header.KeyID]
	if !ok {
		return AccessClaims{}, invalidToken("The access token is signed with an unknown key.")
	}
	if header.Algorithm != string(key.alg) {
		return AccessClaims{}, invalidToken("The access token algorithm does not match its key.")
	}
	payload, err := obj.Verify(key.pub)
	if err != nil {
		return AccessClaims{}, invalidToken("The access token signature is invalid.")
	}

	var p accessPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return AccessClaims{}, invalidToken("The access token claims are malformed.")
	}
	if issuer == "" || p.Issuer != issuer {
		return AccessClaims{}, invalidToken("The access token was issued by another issuer.")
	}
	if p.Expiry == nil {
		return AccessClaims{}, invalidToken("The access token has no expiry.")
	}
	if !now.Before(p.Expiry.Time()) {
		return AccessClaims{}, invalidToken("The access token has expired.")
	}
	if p.NotBefore != nil && now.Add(ClockLeeway).Before(p.NotBefore.Time()) {
		return AccessClaims{}, invalidToken("The access token is not valid yet.")
	}
	if p.IssuedAt == nil || p.JTI == "" || p.Subject == "" || p.ClientID == "" {
		return AccessClaims{}, invalidToken("The access token is missing a required claim.")
	}

	c := AccessClaims{
		Issuer:   p.Issuer,
		Subject:  p.Subject,
		ClientID: p.ClientID,
		Scope:    p.Scope,
		JTI:      p.JTI,
		GrantID:  p.GrantID,
		Audience: []string(p.Audience),
		IssuedAt: p.IssuedAt.Time().UTC(),
		Expiry:   p.Expiry.Time().UTC(),
		Email:    p.Email,
	}
	if p.UserID != "" { // sub is an upstream subject; the local user is uid
		if p.IdP == "" {
			return AccessClaims{}, invalidToken("The access token is missing a required claim.")
		}
		c.Subject, c.UpstreamSubject, c.IdP = p.UserID, p.Subject, p.IdP
	}
	if p.NotBefore != nil {
		c.NotBefore = p.NotBefore.Time().UTC()
	}
	return c, nil
}

// IDClaims are the claims of an OpenID Connect ID token (OpenID Connect Core
// §2). Audience is the client ID.
type IDClaims struct {
	Issuer          string
	Subject         string
	Audience        string
	Nonce           string // echoed from the authorization request, §3.1.2.1
	Email           string
	EmailVerified   bool
	AuthTime        time.Time // auth_time, omitted when zero
	IssuedAt        time.Time
	Expiry          time.Time
	AccessTokenHash string // at_hash, see AccessTokenHash
	IdP             string // idp: the upstream issuer when Subject is an upstream subject
}

// idPayload is the JSON form of IDClaims.
type idPayload struct {
	Issuer          string           `json:"iss"`
	Subject         string           `json:"sub"`
	Audience        string           `json:"aud"`
	Expiry          *jwt.NumericDate `json:"exp"`
	IssuedAt        *jwt.NumericDate `json:"iat"`
	AuthTime        *jwt.NumericDate `json:"auth_time,omitempty"`
	Nonce           string           `json:"nonce,omitempty"`
	AccessTokenHash string           `json:"at_hash,omitempty"`
	Email           string           `json:"email,omitempty"`
	EmailVerified   *bool            `json:"email_verified,omitempty"`
	IdP             string           `json:"idp,omitempty"`
}

// SignIDToken signs an OpenID Connect ID token (typ "JWT") with the active
// key: iss, sub, aud, exp, iat (required, OpenID Connect Core §2), auth_time,
// nonce and at_hash when set, email and email_verified only when Email is set.
func (ks *KeySet) SignIDToken(c IDClaims) (string, error) {
	if err := ks.canSign(); err != nil {
		return "", err
	}
	if c.Issuer == "" || c.Subject == "" || c.Audience == "" || c.IssuedAt.IsZero() || c.Expiry.IsZero() {
		return "", errors.New("oauth: sign ID token: iss, sub, aud, iat and exp are required")
	}
	p := idPayload{
		Issuer:          c.Issuer,
		Subject:         c.Subject,
		Audience:        c.Audience,
		Expiry:          jwt.NewNumericDate(c.Expiry),
		IssuedAt:        jwt.NewNumericDate(c.IssuedAt),
		Nonce:           c.Nonce,
		AccessTokenHash: c.AccessTokenHash,
		IdP:             c.IdP,
	}
	if !c.AuthTime.IsZero() {
		p.AuthTime = jwt.NewNumericDate(c.AuthTime)
	}
	if c.Email != "" {
		p.Email = c.Email
		p.EmailVerified = &c.EmailVerified
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("oauth: sign ID token: %w", err)
	}
	return sign(ks.jwtSigner, payload)
}

// AccessTokenHash returns the at_hash of accessToken for an ID token signed
// with alg (OpenID Connect Core §3.1.3.6): the base64url encoding of the
// left-most half of the hash of the token's ASCII octets, the hash being the
// one of alg (SHA-256 for RS256 and ES256). It returns "" for an unknown alg.
func AccessTokenHash(accessToken, alg string) string {
	var h crypto.Hash
	switch alg {
	case "RS256", "ES256", "PS256":
		h = crypto.SHA256
	case "RS384", "ES384", "PS384":
		h = crypto.SHA384
	case "RS512", "ES512", "PS512":
		h = crypto.SHA512
	default:
		return ""
	}
	d := h.New()
	d.Write([]byte(accessToken))
	sum := d.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// SignAssertion signs an arbitrary claim set as a JWT (typ "JWT") with the
// active key; the gateway uses it to prove to the upstream that a request
// came through it. claims must include "exp": an assertion is short-lived.
func (ks *KeySet) SignAssertion(claims map[string]any) (string, error) {
	if err := ks.canSign(); err != nil {
		return "", err
	}
	if _, ok := claims["exp"]; !ok {
		return "", errors.New(`oauth: sign assertion: "exp" is required`)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oauth: sign assertion: %w", err)
	}
	return sign(ks.jwtSigner, payload)
}

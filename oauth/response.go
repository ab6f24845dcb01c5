package oauth

// TokenResponse is a successful token response (RFC 6749 §5.1, OpenID Connect Core
// §3.1.3.3). token_type is "Bearer" with a capital B: clients copy it into the
// Authorization header verbatim (AI-CLIENTS.md A14).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// TokenExchangeResponse is an RFC 8693 §2.2.1 answer.
type TokenExchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in,omitempty"` // absent: the provider's token does not expire
}

// TokenTypeBearer is the token_type of every access token.
const TokenTypeBearer = "Bearer"

// IntrospectionResponse is an RFC 7662 §2.2 introspection answer. An inactive token is
// {"active": false} and nothing else (§2.2: no detail about why).
type IntrospectionResponse struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	JTI       string   `json:"jti,omitempty"`
	GrantID   string   `json:"gid,omitempty"`
	IdP       string   `json:"idp,omitempty"` // the upstream issuer when sub is an upstream subject
}

// UserInfo is the OpenID Connect UserInfo response (Core §5.3.2); email and
// email_verified only with the email scope.
type UserInfo struct {
	Subject       string `json:"sub"`
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	IdP           string `json:"idp,omitempty"` // the upstream issuer when sub is an upstream subject
}

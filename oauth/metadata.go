package oauth

import "github.com/go-jose/go-jose/v4"

// Endpoint paths, relative to the issuer (DESIGN.md, "Contract").
const (
	PathOpenIDConfiguration = "/.well-known/openid-configuration"
	PathServerMetadata      = "/.well-known/oauth-authorization-server"
	PathJWKS                = "/.well-known/jwks.json"
	PathAuthorize           = "/oauth/authorize"
	PathToken               = "/oauth/token"
	PathUserInfo            = "/oauth/userinfo"
	PathIntrospect          = "/oauth/introspect"
	PathRevoke              = "/oauth/revoke"
	PathRegister            = "/oauth/register" // RFC 7591; RFC 7592 management at PathRegister/<client_id>
)

// Grant types the token endpoint accepts.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	// GrantTokenExchange is RFC 8693 token exchange: a developer's API trades a user's
	// access token for the user's token at a connected provider.
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeAccessToken is RFC 8693 §3's identifier of an OAuth access token.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// BuiltinScopes are the scopes every app offers, published in scopes_supported. Apps'
// own scopes are not listed: ChatGPT requests every advertised scope (AI-CLIENTS.md C5).
var BuiltinScopes = []string{"openid", "email", "profile"}

// ServerMetadata is the authorization server metadata (RFC 8414 §2) and OpenID Provider
// metadata (OpenID Connect Discovery §3), one document served at both well-known URLs.
// Fields that later features add (registration_endpoint,
// client_id_metadata_document_supported) are omitted while empty.
type ServerMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserInfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
}

// NewServerMetadata returns the metadata of the server at issuer (exactly
// AUTHGPTS_BASE_URL: RFC 8414 §3.3 and RFC 9207 compare it byte for byte), whose ID
// tokens are signed with idTokenAlg.
func NewServerMetadata(issuer, idTokenAlg string) ServerMetadata {
	secretMethods := []string{AuthMethodSecretBasic, AuthMethodSecretPost}
	return ServerMetadata{
		Issuer:                           issuer,
		AuthorizationEndpoint:            issuer + PathAuthorize,
		TokenEndpoint:                    issuer + PathToken,
		UserInfoEndpoint:                 issuer + PathUserInfo,
		JWKSURI:                          issuer + PathJWKS,
		IntrospectionEndpoint:            issuer + PathIntrospect,
		RevocationEndpoint:               issuer + PathRevoke,
		ScopesSupported:                  BuiltinScopes,
		ResponseTypesSupported:           []string{"code"},
		ResponseModesSupported:           []string{"query"},
		GrantTypesSupported:              []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantTokenExchange},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{idTokenAlg},
		RegistrationEndpoint:             issuer + PathRegister,
		// private_key_jwt: clients described by a metadata document with a jwks_uri
		// (ChatGPT's, AI-CLIENTS.md C1); none for public MCP clients (K4).
		TokenEndpointAuthMethodsSupported:          []string{AuthMethodSecretBasic, AuthMethodSecretPost, AuthMethodNone, AuthMethodPrivateKeyJWT},
		TokenEndpointAuthSigningAlgValuesSupported: algNames(clientAssertionAlgs),
		ClientIDMetadataDocumentSupported:          true,
		IntrospectionEndpointAuthMethodsSupported:  secretMethods,
		RevocationEndpointAuthMethodsSupported:     []string{AuthMethodSecretBasic, AuthMethodSecretPost, AuthMethodNone},
		// RFC 9700 §2.1.1 and the MCP authorization spec: S256 only, and always listed.
		CodeChallengeMethodsSupported: []string{MethodS256},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
			"email", "email_verified"},
		PromptValuesSupported: []string{"none", "login", "consent", "select_account"},
		// RFC 9207: every authorization response, errors included, carries iss.
		AuthorizationResponseIssParameterSupported: true,
	}
}

func algNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

package oauth

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// ClientMetadata is the client metadata of RFC 7591 §2, shared by dynamic registration
// requests and client ID metadata documents. Every optional field is omitted when empty:
// Claude's validator rejects null and "" values in registration responses.
type ClientMetadata struct {
	ClientID                string   `json:"client_id,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	LogoURI                 string   `json:"logo_uri,omitempty"`
	TosURI                  string   `json:"tos_uri,omitempty"`
	PolicyURI               string   `json:"policy_uri,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	Contacts                []string `json:"contacts,omitempty"`
	JWKSURI                 string   `json:"jwks_uri,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
	ApplicationType         string   `json:"application_type,omitempty"`
}

// Token endpoint authentication methods.
const (
	AuthMethodNone          = "none"
	AuthMethodSecretBasic   = "client_secret_basic"
	AuthMethodSecretPost    = "client_secret_post"
	AuthMethodPrivateKeyJWT = "private_key_jwt"
)

// IsPublic reports whether the client authenticates with no secret (PKCE instead).
func (m ClientMetadata) IsPublic() bool { return m.TokenEndpointAuthMethod == AuthMethodNone }

const maxMetadataText = 200

// ValidateRegistration checks a dynamic registration request (RFC 7591 §2, §3.2.2) and
// returns it normalised: defaults filled in, scope values the app does not offer dropped
// (clients such as Claude send their own, e.g. "claudeai"), empty optional strings
// removed. Errors are invalid_redirect_uri or invalid_client_metadata.
func ValidateRegistration(m ClientMetadata, offeredScopes []string) (ClientMetadata, error) {
	if m.ClientID != "" {
		// RFC 9700 §4.15 / R12: the server assigns client IDs, clients never choose them.
		return m, ErrInvalidClientMetadata.WithDescription("client_id is assigned by the server and must not be sent")
	}
	if len(m.RedirectURIs) == 0 {
		return m, ErrInvalidRedirectURI.WithDescription("redirect_uris is required")
	}
	if len(m.RedirectURIs) > 20 {
		return m, ErrInvalidRedirectURI.WithDescription("at most 20 redirect_uris")
	}
	for _, u := range m.RedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			return m, err
		}
	}
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = AuthMethodSecretBasic // RFC 7591 §2 default
	}
	if !slices.Contains([]string{AuthMethodNone, AuthMethodSecretBasic, AuthMethodSecretPost}, m.TokenEndpointAuthMethod) {
		return m, ErrInvalidClientMetadata.WithDescription("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{"authorization_code"}
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return m, ErrInvalidClientMetadata.WithDescription(fmt.Sprintf("grant type %q cannot be registered; use authorization_code and refresh_token", g))
		}
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	if len(m.ResponseTypes) != 1 || m.ResponseTypes[0] != "code" {
		return m, ErrInvalidClientMetadata.WithDescription(`response_types must be ["code"]`)
	}
	if m.ApplicationType != "" && m.ApplicationType != "web" && m.ApplicationType != "native" {
		return m, ErrInvalidClientMetadata.WithDescription("application_type must be web or native")
	}
	if err := checkMetadataText(m); err != nil {
		return m, err
	}
	if err := checkMetadataURIs(&m); err != nil {
		return m, err
	}
	m.Scope = keepOffered(m.Scope, offeredScopes)
	return m, nil
}

// IsMetadataDocumentURL reports whether a client_id names a client ID metadata document:
// an https URL with a path and no fragment or credentials.
func IsMetadataDocumentURL(clientID string) bool {
	u, err := url.Parse(clientID)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil &&
		u.Fragment == "" && u.Path != "" && u.Path != "/"
}

// ParseMetadataDocument validates a fetched client ID metadata document: its client_id
// must equal the URL it was fetched from exactly, it needs redirect_uris, and it may only
// use authentication without a shared secret (none, or private_key_jwt with a jwks_uri).
func ParseMetadataDocument(docURL string, body []byte, offeredScopes []string) (ClientMetadata, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return ClientMetadata{}, ErrInvalidClientMetadata.WithDescription("the client metadata document is not a JSON object")
	}
	if !ValidJSONText(body) {
		return ClientMetadata{}, ErrInvalidClientMetadata.WithDescription("the client metadata document holds text that is not accepted")
	}
	for _, forbidden := range []string{"client_secret", "client_secret_expires_at"} {
		if _, ok := raw[forbidden]; ok {
			return ClientMetadata{}, ErrInvalidClientMetadata.WithDescription("a client metadata document must not contain " + forbidden)
		}
	}
	var m ClientMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return ClientMetadata{}, ErrInvalidClientMetadata.WithDescription("the client metadata document has a field of the wrong type")
	}
	if m.ClientID != docURL {
		return ClientMetadata{}, ErrInvalidClientMetadata.WithDescription("the document's client_id does not equal its URL")
	}
	if len(m.RedirectURIs) == 0 {
		return ClientMetadata{}, ErrInvalidClientMetadata.WithDescription("the document has no redirect_uris")
	}
	for _, u := range m.RedirectURIs {
		if err := ValidateRedirectURI(u); err != nil {
			return ClientMetadata{}, ErrInvalidClientMetadata.WithDescription("the document has an invalid redirect URI")
		}
	}
	switch m.TokenEndpointAuthMethod {
	case "":
		m.TokenEndpointAuthMethod = AuthMethodNone
	case AuthMethodNone:
	case AuthMethodPrivateKeyJWT:
		if m.JWKSURI == "" {
			return ClientMetadata{}, ErrInvalidClientMetadata.WithDescription("private_key_jwt needs a jwks_uri")
		}
	default:
		return ClientMetadata{}, ErrInvalidClientMetadata.WithDescription("a metadata document client authenticates with none or private_key_jwt")
	}
	if err := checkMetadataText(m); err != nil {
		return ClientMetadata{}, err
	}
	if err := checkMetadataURIs(&m); err != nil {
		return ClientMetadata{}, err
	}
	m.Scope = keepOffered(m.Scope, offeredScopes)
	return m, nil
}

func checkMetadataText(m ClientMetadata) error {
	for name, v := range map[string]string{"client_name": m.ClientName, "software_id": m.SoftwareID, "software_version": m.SoftwareVersion} {
		if len(v) > maxMetadataText || strings.ContainsAny(v, "\x00\r\n") {
			return ErrInvalidClientMetadata.WithDescription(name + " is too long or has control characters")
		}
	}
	if len(m.Contacts) > 10 {
		return ErrInvalidClientMetadata.WithDescription("at most 10 contacts")
	}
	return nil
}

// checkMetadataURIs requires https for informational URIs and drops empty ones.
func checkMetadataURIs(m *ClientMetadata) error {
	for name, p := range map[string]*string{"client_uri": &m.ClientURI, "logo_uri": &m.LogoURI, "tos_uri": &m.TosURI, "policy_uri": &m.PolicyURI, "jwks_uri": &m.JWKSURI} {
		if *p == "" {
			continue
		}
		u, err := url.Parse(*p)
		if err != nil || u.Scheme != "https" || u.Host == "" || len(*p) > MaxRedirectURILength {
			return ErrInvalidClientMetadata.WithDescription(name + " must be an https URL")
		}
	}
	return nil
}

// keepOffered drops requested scope values the app does not offer.
func keepOffered(scope string, offered []string) string {
	var kept []string
	for _, s := range strings.Fields(scope) {
		if slices.Contains(offered, s) && !slices.Contains(kept, s) {
			kept = append(kept, s)
		}
	}
	return strings.Join(kept, " ")
}

// RegistrationResponse is the RFC 7591 §3.2.1 answer: the registered metadata plus the
// credentials. client_secret_expires_at is present (0: never) exactly when a secret is.
type RegistrationResponse struct {
	ClientMetadata
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`
}

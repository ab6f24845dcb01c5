package oauth

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var offered = []string{"openid", "email", "profile", "notes.read"}

func TestValidateRegistration_ClaudeRequest(t *testing.T) {
	// The body Claude sends (AI-CLIENTS.md K1), with its own scope value.
	var m ClientMetadata
	body := `{"client_name":"claudeai","grant_types":["authorization_code","refresh_token"],"response_types":["code"],
		"token_endpoint_auth_method":"none","scope":"claudeai","redirect_uris":["https://claude.ai/api/mcp/auth_callback"],
		"logo_uri":"","client_uri":""}`
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	got, err := ValidateRegistration(m, offered)
	if err != nil {
		t.Fatalf("ValidateRegistration() error = %v", err)
	}
	if got.Scope != "" || !got.IsPublic() {
		t.Errorf("scope = %q, public = %v; want the unknown scope dropped and a public client", got.Scope, got.IsPublic())
	}
	exp := int64(0)
	out, _ := json.Marshal(RegistrationResponse{ClientMetadata: got, ClientIDIssuedAt: 1700000000})
	for _, bad := range []string{"null", `""`, "client_secret_expires_at", "logo_uri"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("response %s contains %s", out, bad)
		}
	}
	out, _ = json.Marshal(RegistrationResponse{ClientMetadata: got, ClientSecret: "s", ClientSecretExpiresAt: &exp})
	if !strings.Contains(string(out), `"client_secret_expires_at":0`) {
		t.Errorf("response with a secret lacks client_secret_expires_at 0: %s", out)
	}
}

func TestValidateRegistration_Rejects(t *testing.T) {
	tests := []struct {
		name string
		m    ClientMetadata
		code string
	}{
		{"no redirect", ClientMetadata{}, "invalid_redirect_uri"},
		{"http non-loopback", ClientMetadata{RedirectURIs: []string{"http://evil.example/cb"}}, "invalid_redirect_uri"},
		{"fragment", ClientMetadata{RedirectURIs: []string{"https://a.example/cb#x"}}, "invalid_redirect_uri"},
		{"client chose its id", ClientMetadata{ClientID: "admin", RedirectURIs: []string{"https://a.example/cb"}}, "invalid_client_metadata"},
		{"client_credentials", ClientMetadata{RedirectURIs: []string{"https://a.example/cb"}, GrantTypes: []string{"client_credentials"}}, "invalid_client_metadata"},
		{"implicit", ClientMetadata{RedirectURIs: []string{"https://a.example/cb"}, ResponseTypes: []string{"token"}}, "invalid_client_metadata"},
		{"private_key_jwt", ClientMetadata{RedirectURIs: []string{"https://a.example/cb"}, TokenEndpointAuthMethod: "private_key_jwt"}, "invalid_client_metadata"},
		{"http logo", ClientMetadata{RedirectURIs: []string{"https://a.example/cb"}, LogoURI: "http://a.example/logo.png"}, "invalid_client_metadata"},
		{"newline in name", ClientMetadata{RedirectURIs: []string{"https://a.example/cb"}, ClientName: "a\nb"}, "invalid_client_metadata"},
	}
	for _, tt := range tests {
		_, err := ValidateRegistration(tt.m, offered)
		var oe Error
		if !errors.As(err, &oe) || oe.Code != tt.code {
			t.Errorf("%s: error = %v, want %s", tt.name, err, tt.code)
		}
	}
}

func TestValidateRegistration_DefaultsAndLoopback(t *testing.T) {
	got, err := ValidateRegistration(ClientMetadata{RedirectURIs: []string{"http://127.0.0.1:33418/callback"}, Scope: "openid notes.read bogus openid"}, offered)
	if err != nil {
		t.Fatal(err)
	}
	if got.TokenEndpointAuthMethod != AuthMethodSecretBasic || got.GrantTypes[0] != "authorization_code" || got.ResponseTypes[0] != "code" || got.Scope != "openid notes.read" {
		t.Errorf("normalised = %+v", got)
	}
}

func TestIsMetadataDocumentURL(t *testing.T) {
	tests := map[string]bool{
		"https://claude.ai/oauth/claude-code-client-metadata": true,
		"https://chatgpt.com/oauth/abc/client.json":           true,
		"https://example.com":                                 false,
		"https://example.com/":                                false,
		"http://example.com/client.json":                      false,
		"https://u:p@example.com/client.json":                 false,
		"https://example.com/client.json#x":                   false,
		"agpt_abc123":                                         false,
	}
	for in, want := range tests {
		if got := IsMetadataDocumentURL(in); got != want {
			t.Errorf("IsMetadataDocumentURL(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestParseMetadataDocument(t *testing.T) {
	const docURL = "https://app.example/oauth/client.json"
	good := `{"client_id":"` + docURL + `","client_name":"Example","redirect_uris":["https://app.example/cb","http://127.0.0.1/cb"],"scope":"openid other"}`
	m, err := ParseMetadataDocument(docURL, []byte(good), offered)
	if err != nil || m.ClientName != "Example" || !m.IsPublic() || m.Scope != "openid" {
		t.Fatalf("ParseMetadataDocument(good) = %+v, %v", m, err)
	}
	bad := map[string]string{
		"client_id differs":  `{"client_id":"https://app.example/oauth/other.json","redirect_uris":["https://app.example/cb"]}`,
		"trailing slash":     `{"client_id":"` + docURL + `/","redirect_uris":["https://app.example/cb"]}`,
		"no redirects":       `{"client_id":"` + docURL + `"}`,
		"shared secret":      `{"client_id":"` + docURL + `","redirect_uris":["https://app.example/cb"],"client_secret":"x"}`,
		"secret auth":        `{"client_id":"` + docURL + `","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_post"}`,
		"pkjwt without jwks": `{"client_id":"` + docURL + `","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`,
		"not json":           `<html>`,
		"wrong type":         `{"client_id":"` + docURL + `","redirect_uris":"https://app.example/cb"}`,
		"bad redirect":       `{"client_id":"` + docURL + `","redirect_uris":["javascript:alert(1)"]}`,
	}
	for name, body := range bad {
		if _, err := ParseMetadataDocument(docURL, []byte(body), offered); !errors.Is(err, ErrInvalidClientMetadata) {
			t.Errorf("%s: error = %v, want invalid_client_metadata", name, err)
		}
	}
	pk := `{"client_id":"` + docURL + `","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://app.example/jwks.json"}`
	if m, err := ParseMetadataDocument(docURL, []byte(pk), offered); err != nil || m.TokenEndpointAuthMethod != AuthMethodPrivateKeyJWT {
		t.Errorf("private_key_jwt document = %+v, %v", m, err)
	}
}

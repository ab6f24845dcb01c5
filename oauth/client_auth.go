package oauth

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// ClientCredentials are what a request presented to identify its client.
type ClientCredentials struct {
	ID     string
	Secret string
	Method string // AuthMethodSecretBasic, AuthMethodSecretPost or AuthMethodNone (clientmeta.go)
}

// BasicUsed reports whether the client tried HTTP Basic authentication, so that an
// invalid_client answer carries a Basic challenge (RFC 6749 §5.2).
func (c ClientCredentials) BasicUsed() bool { return c.Method == AuthMethodSecretBasic }

// ParseClientCredentials reads the client's credentials from the Authorization header
// and the request parameters (form, or the JSON body already turned into form values).
//
// Every confidential client may use client_secret_basic or client_secret_post
// (ChatGPT offers both, Claude sends post only). With Basic, a client_id in the body is
// tolerated when it names the same client; a client_secret in the body as well is two
// methods at once and refused (RFC 6749 §2.3). Without a secret the method is "none".
// Errors are invalid_request or invalid_client; the returned credentials keep Method
// set even then, so the caller can answer with the right challenge.
func ParseClientCredentials(r *http.Request, form url.Values) (ClientCredentials, error) {
	bodyID, bodySecret := form.Get("client_id"), form.Get("client_secret")
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, payload, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Basic") {
			return ClientCredentials{}, ErrInvalidClient.WithDescription("Only HTTP Basic client authentication is accepted in the Authorization header.")
		}
		creds := ClientCredentials{Method: AuthMethodSecretBasic}
		id, secret, ok := decodeBasic(strings.TrimSpace(payload))
		if !ok || id == "" || !ValidText(id) || !ValidText(secret) {
			return creds, ErrInvalidClient.WithDescription("The Basic authorization header is malformed.")
		}
		creds.ID, creds.Secret = id, secret
		if bodySecret != "" {
			return creds, ErrInvalidRequest.WithDescription("Use one client authentication method: HTTP Basic or client_secret in the body, not both.")
		}
		if bodyID != "" && bodyID != id {
			return creds, ErrInvalidRequest.WithDescription("The client_id in the body differs from the one in the Authorization header.")
		}
		return creds, nil
	}
	if bodyID == "" {
		return ClientCredentials{}, ErrInvalidClient.WithDescription("Client authentication is required: send client_id (and client_secret) or use HTTP Basic.")
	}
	if bodySecret != "" {
		return ClientCredentials{ID: bodyID, Secret: bodySecret, Method: AuthMethodSecretPost}, nil
	}
	return ClientCredentials{ID: bodyID, Method: AuthMethodNone}, nil
}

// decodeBasic decodes "base64(id:secret)". RFC 6749 §2.3.1 has the client form-encode
// both parts first; values that are not valid form encoding are taken literally.
func decodeBasic(payload string) (id, secret string, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(payload); err != nil {
			return "", "", false
		}
	}
	id, secret, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	return formUnescape(id), formUnescape(secret), true
}

func formUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

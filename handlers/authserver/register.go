package authserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// Dynamic client registration (RFC 7591) and its management (RFC 7592). Registration is
// global: the registered client belongs to no app until an authorization request binds
// it to one through its resource (see bindResource). Everything answers JSON, errors
// included (AI-CLIENTS.md M10), with CORS and no cookies (M11).

// errTooManyRegistrations is the 429 answer of the per-IP limit (RFC 7591 has no code
// for it; the shape stays RFC 6749 §5.2 JSON so SDK parsers read it).
var errTooManyRegistrations = oauth.Error{Code: "too_many_requests", Status: http.StatusTooManyRequests,
	Description: "Too many client registrations from this address; try again later."}

// errRegistrationToken answers every RFC 7592 request whose registration access token
// does not match the client (or whose client does not exist): RFC 7592 §2 asks for an
// RFC 6750 error, and one answer for both cases tells nothing about which.
var errRegistrationToken = oauth.ErrInvalidToken.WithDescription("The registration access token is invalid for this client.")

// register is POST /oauth/register (RFC 7591 §3).
func (h *Handler) register(c *gin.Context) {
	ok, retry, err := h.registrations.Allow(c.Request.Context(), c.ClientIP(), h.registrationsPerMinute, h.now())
	if err != nil {
		writeError(c, err, false)
		return
	}
	if !ok {
		c.Header("Retry-After", strconv.Itoa(int(retry.Seconds()+0.999)))
		writeError(c, errTooManyRegistrations, false)
		return
	}
	m, _, err := readClientMetadata(c.Request)
	if err != nil {
		writeError(c, err, false)
		return
	}
	m, err = oauth.ValidateRegistration(m, oauth.BuiltinScopes)
	if err != nil {
		writeError(c, err, false)
		return
	}
	id := oauth.NewClientID()
	regToken := oauth.NewToken(oauth.PrefixRegistrationToken)
	metadata, err := json.Marshal(m)
	if err != nil {
		writeError(c, err, false)
		return
	}
	n := store.NewRegistration{
		ID: id, Name: registeredName(m), Kind: store.ClientKindPublic, RedirectURIs: m.RedirectURIs,
		AuthMethod: m.TokenEndpointAuthMethod, Metadata: metadata,
		RegistrationTokenHash: h.hasher.Hash(regToken), IP: c.ClientIP(),
	}
	var secret string
	if !m.IsPublic() {
		// A confidential registration gets a secret, hashed like every client secret.
		secret = oauth.NewToken(oauth.PrefixClientSecret)
		n.Kind, n.SecretHash, n.SecretHint = store.ClientKindGPT, h.hasher.Hash(secret), oauth.SecretHint(secret)
	}
	cl, err := h.store.CreateRegistration(c.Request.Context(), n, h.now())
	if err != nil {
		writeError(c, err, false)
		return
	}
	resp := h.registrationResponse(cl, m)
	resp.RegistrationAccessToken = regToken
	if secret != "" {
		never := int64(0) // RFC 7591 §3.2.1: REQUIRED with a secret; 0 = it does not expire
		resp.ClientSecret, resp.ClientSecretExpiresAt = secret, &never
	}
	oauth.WriteJSON(c.Writer, http.StatusCreated, resp)
	c.Abort()
}

// registrationRead is GET /oauth/register/:client_id (RFC 7592 §2.1).
func (h *Handler) registrationRead(c *gin.Context) {
	cl, ok := h.registrationOf(c)
	if !ok {
		return
	}
	var m oauth.ClientMetadata
	_ = json.Unmarshal(cl.Metadata, &m) // written by register from the same struct
	writeJSON(c, h.registrationResponse(cl.Client, m))
}

// registrationUpdate is PUT /oauth/register/:client_id (RFC 7592 §2.2): the body
// replaces the registered metadata. The client stays public or confidential as it was
// registered (its secret does not change here). The registration access token is rotated
// on every update: the answer carries the new one and the one presented stops working,
// in the same statement as the update (a concurrent update with the old token finds
// nothing and is refused).
func (h *Handler) registrationUpdate(c *gin.Context) {
	cl, ok := h.registrationOf(c)
	if !ok {
		return
	}
	m, raw, err := readClientMetadata(c.Request)
	if err != nil {
		writeError(c, err, false)
		return
	}
	for _, f := range []string{"registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at"} {
		if _, present := raw[f]; present {
			writeError(c, oauth.ErrInvalidRequest.WithDescription(f+" must not be sent in an update (RFC 7592 section 2.2)."), false)
			return
		}
	}
	if m.ClientID != cl.ID {
		writeError(c, oauth.ErrInvalidRequest.WithDescription("client_id must be sent and equal the registered client_id."), false)
		return
	}
	if _, present := raw["client_secret"]; present {
		// §2.2: a client_secret that is sent must be the current one; nothing else
		// about the secret changes here.
		var sent string
		_ = json.Unmarshal(raw["client_secret"], &sent)
		e, err := h.clients.get(c.Request.Context(), cl.ID)
		if err != nil {
			writeError(c, err, false)
			return
		}
		if sent == "" || !e.found || !e.secretMatches(h.hasher.Hash(sent), h.now()) {
			writeError(c, oauth.ErrInvalidClientMetadata.WithDescription("client_secret does not match the current secret."), false)
			return
		}
	}
	m.ClientID = ""
	m, err = oauth.ValidateRegistration(m, oauth.BuiltinScopes)
	if err != nil {
		writeError(c, err, false)
		return
	}
	if m.IsPublic() != (cl.Kind == store.ClientKindPublic) {
		writeError(c, oauth.ErrInvalidClientMetadata.WithDescription(
			"token_endpoint_auth_method cannot change between none and a secret method; register a new client."), false)
		return
	}
	metadata, err := json.Marshal(m)
	if err != nil {
		writeError(c, err, false)
		return
	}
	regToken := oauth.NewToken(oauth.PrefixRegistrationToken)
	updated, err := h.store.UpdateRegistration(c.Request.Context(), cl.ID, cl.tokenHash, store.RegistrationUpdate{
		Name: registeredName(m), RedirectURIs: m.RedirectURIs, AuthMethod: m.TokenEndpointAuthMethod,
		Metadata: metadata, IP: c.ClientIP(), NewTokenHash: h.hasher.Hash(regToken),
	}, h.now())
	if errors.Is(err, store.ErrNotFound) { // deleted meanwhile
		h.writeRegistrationTokenError(c)
		return
	}
	if err != nil {
		writeError(c, err, false)
		return
	}
	resp := h.registrationResponse(updated, m)
	resp.RegistrationAccessToken = regToken
	writeJSON(c, resp)
}

// registrationDelete is DELETE /oauth/register/:client_id (RFC 7592 §2.3): the client,
// its grants and every token issued to it end.
func (h *Handler) registrationDelete(c *gin.Context) {
	cl, ok := h.registrationOf(c)
	if !ok {
		return
	}
	err := h.store.DeleteRegistration(c.Request.Context(), cl.ID, cl.tokenHash, c.ClientIP(), h.now())
	if errors.Is(err, store.ErrNotFound) {
		h.writeRegistrationTokenError(c)
		return
	}
	if err != nil {
		writeError(c, err, false)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.AbortWithStatus(http.StatusNoContent)
}

// registeredClient is a client found by its registration access token.
type registeredClient struct {
	store.Client
	tokenHash []byte
}

// registrationOf authenticates an RFC 7592 request with the registration access token
// (Authorization: Bearer) and returns the client; it has answered when ok is false.
func (h *Handler) registrationOf(c *gin.Context) (registeredClient, bool) {
	token, ok := oauth.BearerToken(c.GetHeader("Authorization"))
	if !ok || !strings.HasPrefix(token, oauth.PrefixRegistrationToken) {
		h.writeRegistrationTokenError(c)
		return registeredClient{}, false
	}
	hash := h.hasher.Hash(token)
	cl, err := h.store.RegistrationByToken(c.Request.Context(), c.Param("client_id"), hash)
	if errors.Is(err, store.ErrNotFound) {
		h.writeRegistrationTokenError(c)
		return registeredClient{}, false
	}
	if err != nil {
		writeError(c, err, false)
		return registeredClient{}, false
	}
	return registeredClient{Client: cl, tokenHash: hash}, true
}

func (h *Handler) writeRegistrationTokenError(c *gin.Context) {
	writeError(c, errRegistrationToken, false)
}

// registrationResponse is the registered metadata with the client's identifiers
// (RFC 7591 §3.2.1, RFC 7592 §3): no empty or null field.
func (h *Handler) registrationResponse(cl store.Client, m oauth.ClientMetadata) oauth.RegistrationResponse {
	m.ClientID = cl.ID
	return oauth.RegistrationResponse{
		ClientMetadata:        m,
		ClientIDIssuedAt:      cl.CreatedAt.Unix(),
		RegistrationClientURI: h.issuer + oauth.PathRegister + "/" + url.PathEscape(cl.ID),
	}
}

// readClientMetadata decodes a JSON client metadata body (RFC 7591 §3.1). It returns
// the raw members too, for the checks of RFC 7592 §2.2. Errors are invalid_request
// (not JSON, too large) or invalid_client_metadata (a member of the wrong type).
func readClientMetadata(r *http.Request) (oauth.ClientMetadata, map[string]json.RawMessage, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		return oauth.ClientMetadata{}, nil, oauth.ErrInvalidClientMetadata.WithDescription("Send the client metadata as application/json.")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return oauth.ClientMetadata{}, nil, oauth.ErrInvalidRequest.WithDescription("The request body is too large or could not be read.")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return oauth.ClientMetadata{}, nil, oauth.ErrInvalidClientMetadata.WithDescription("The body is not a JSON object.")
	}
	if !oauth.ValidJSONText(body) {
		return oauth.ClientMetadata{}, nil, oauth.ErrInvalidClientMetadata.WithDescription("A client metadata field is too long or holds characters that are not accepted.")
	}
	var m oauth.ClientMetadata
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return oauth.ClientMetadata{}, nil, oauth.ErrInvalidClientMetadata.WithDescription("A client metadata field has the wrong type.")
	}
	return m, raw, nil
}

// registeredName is the name a registered client is listed and shown under: its
// client_name, else the host it returns to (clients.name holds at most 100 characters).
func registeredName(m oauth.ClientMetadata) string {
	name := strings.TrimSpace(m.ClientName)
	if name == "" && len(m.RedirectURIs) > 0 {
		if u, err := url.Parse(m.RedirectURIs[0]); err == nil {
			name = u.Hostname()
		}
	}
	if name == "" {
		name = "MCP client"
	}
	for utf8.RuneCountInString(name) > 100 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return name
}

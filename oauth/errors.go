package oauth

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
)

// Error is an OAuth 2.0 error: the "error" code, an optional human-readable
// "error_description" and the HTTP status used when it is written as JSON.
//
// The description is sent to the client: it must never contain a secret,
// token, code or OTP, and should stay within the characters RFC 6749 §5.2
// allows (printable ASCII except '"' and '\').
type Error struct {
	Code        string
	Description string
	Status      int
}

// Error values for every code the server emits.
var (
	// RFC 6749 §4.1.2.1 and §5.2.
	ErrInvalidRequest          = Error{Code: "invalid_request", Status: http.StatusBadRequest}
	ErrInvalidClient           = Error{Code: "invalid_client", Status: http.StatusUnauthorized}
	ErrInvalidGrant            = Error{Code: "invalid_grant", Status: http.StatusBadRequest}
	ErrUnauthorizedClient      = Error{Code: "unauthorized_client", Status: http.StatusBadRequest}
	ErrUnsupportedGrantType    = Error{Code: "unsupported_grant_type", Status: http.StatusBadRequest}
	ErrUnsupportedResponseType = Error{Code: "unsupported_response_type", Status: http.StatusBadRequest}
	ErrInvalidScope            = Error{Code: "invalid_scope", Status: http.StatusBadRequest}
	ErrAccessDenied            = Error{Code: "access_denied", Status: http.StatusForbidden}
	ErrServerError             = Error{Code: "server_error", Status: http.StatusInternalServerError}
	ErrTemporarilyUnavailable  = Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable}

	// RFC 8707 §2: the requested resource is invalid, unknown or malformed.
	ErrInvalidTarget = Error{Code: "invalid_target", Status: http.StatusBadRequest}

	// RFC 6750 §3.1: errors of a protected resource (gateway, userinfo).
	ErrInvalidToken      = Error{Code: "invalid_token", Status: http.StatusUnauthorized}
	ErrInsufficientScope = Error{Code: "insufficient_scope", Status: http.StatusForbidden}

	// OpenID Connect Core §3.1.2.6: prompt=none could not be honoured.
	ErrLoginRequired   = Error{Code: "login_required", Status: http.StatusBadRequest}
	ErrConsentRequired = Error{Code: "consent_required", Status: http.StatusBadRequest}

	// RFC 7591 §3.2.2: dynamic client registration errors.
	ErrInvalidRedirectURI    = Error{Code: "invalid_redirect_uri", Status: http.StatusBadRequest}
	ErrInvalidClientMetadata = Error{Code: "invalid_client_metadata", Status: http.StatusBadRequest}
)

// RetryAfterUnavailable is the Retry-After (seconds) of every temporarily_unavailable
// answer: a database restart or failover takes a few seconds.
const RetryAfterUnavailable = "2"

// serverErrorDescription is the only description ever sent for an
// unexpected error: the cause goes to the log, never to the client.
const serverErrorDescription = "The server encountered an unexpected error."

// Error implements the error interface.
func (e Error) Error() string {
	if e.Description == "" {
		return "oauth: " + e.Code
	}
	return "oauth: " + e.Code + ": " + e.Description
}

// Is reports whether target is an Error (or *Error) with the same code, so
// errors.Is(err, ErrInvalidGrant) holds whatever the description.
func (e Error) Is(target error) bool {
	switch t := target.(type) {
	case Error:
		return t.Code == e.Code
	case *Error:
		return t != nil && t.Code == e.Code
	}
	return false
}

// WithDescription returns a copy of e with the given description; the shared
// variables are never modified.
func (e Error) WithDescription(description string) Error {
	e.Description = description
	return e
}

// asError finds an Error or *Error anywhere in err's chain.
func asError(err error) (Error, bool) {
	var v Error
	if errors.As(err, &v) && v.Code != "" {
		return v, true
	}
	var p *Error
	if errors.As(err, &p) && p != nil && p.Code != "" {
		return *p, true
	}
	return Error{}, false
}

// errorBody is the RFC 6749 §5.2 JSON error response.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// WriteError writes err as an RFC 6749 §5.2 JSON error response with
// Cache-Control: no-store and Pragma: no-cache.
//
// An Error (or *Error) found with errors.As is written with its status
// (400 when unset). invalid_client is always 401, and carries
// WWW-Authenticate: Basic realm="authgpts" when the client used HTTP Basic
// authentication (RFC 6749 §5.2). invalid_token and insufficient_scope carry
// a Bearer challenge (RFC 6750 §3). A WWW-Authenticate header already set by
// the caller (for example with resource_metadata, RFC 9728 §5.1) is kept.
// temporarily_unavailable (503) carries Retry-After.
//
// Any other error becomes server_error with a fixed description; the cause
// is logged to log (slog.Default when nil) and never written to the body.
func WriteError(w http.ResponseWriter, err error, basicAuthUsed bool, log *slog.Logger) {
	e, ok := asError(err)
	if !ok {
		if log == nil {
			log = slog.Default()
		}
		log.Error("oauth: unexpected error", "err", err)
		e = ErrServerError.WithDescription(serverErrorDescription)
	}

	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusBadRequest // RFC 6749 §5.2: 400 unless specified otherwise
	}

	h := w.Header()
	switch e.Code {
	case ErrInvalidClient.Code:
		// RFC 6749 §5.2: 401, with a challenge for the scheme the client used.
		status = http.StatusUnauthorized
		if basicAuthUsed && h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", `Basic realm="authgpts"`)
		}
	case ErrInvalidToken.Code, ErrInsufficientScope.Code:
		// RFC 6750 §3: a protected resource answers with a Bearer challenge.
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", BearerChallenge{Error: e.Code, Description: e.Description}.String())
		}
	case ErrTemporarilyUnavailable.Code:
		// RFC 9110 §10.2.3: tell the client when to try again.
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", RetryAfterUnavailable)
		}
	}

	WriteJSON(w, status, errorBody{Error: e.Code, ErrorDescription: e.Description})
}

// isChallengeSafe reports whether s fits the quoted-string grammar of RFC 6750 §3
// (%x20-21 / %x23-5B / %x5D-7E).
func isChallengeSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// WriteJSON writes v as an application/json response with the given status
// and the no-store headers RFC 6749 §5.1 requires on token responses. If v
// cannot be encoded it writes a 500 server_error instead.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{Error: ErrServerError.Code, ErrorDescription: serverErrorDescription})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store") // RFC 6749 §5.1
	h.Set("Pragma", "no-cache")        // RFC 6749 §5.1
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

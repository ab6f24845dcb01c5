package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestErrorWithDescriptionIsCopy(t *testing.T) {
	e := ErrInvalidGrant.WithDescription("the code has expired")
	if ErrInvalidGrant.Description != "" {
		t.Fatalf("WithDescription modified the shared variable: %q", ErrInvalidGrant.Description)
	}
	if e.Code != "invalid_grant" || e.Status != http.StatusBadRequest || e.Description != "the code has expired" {
		t.Errorf("WithDescription() = %+v", e)
	}
	if got, want := e.Error(), "oauth: invalid_grant: the code has expired"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := ErrInvalidGrant.Error(), "oauth: invalid_grant"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestErrorIs(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same var", ErrInvalidGrant, ErrInvalidGrant, true},
		{"with description", ErrInvalidGrant.WithDescription("x"), ErrInvalidGrant, true},
		{"wrapped", fmt.Errorf("redeem: %w", ErrInvalidGrant.WithDescription("x")), ErrInvalidGrant, true},
		{"pointer error", &Error{Code: "invalid_grant"}, ErrInvalidGrant, true},
		{"pointer target", ErrInvalidGrant, &ErrInvalidGrant, true},
		{"other code", ErrInvalidGrant, ErrInvalidClient, false},
		{"plain error", errors.New("invalid_grant"), ErrInvalidGrant, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(tt.err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", tt.err, tt.target, got, tt.want)
			}
		})
	}
}

func TestErrorStatuses(t *testing.T) {
	tests := []struct {
		err    Error
		code   string
		status int
	}{
		{ErrInvalidRequest, "invalid_request", 400},
		{ErrInvalidClient, "invalid_client", 401},
		{ErrInvalidGrant, "invalid_grant", 400},
		{ErrUnauthorizedClient, "unauthorized_client", 400},
		{ErrUnsupportedGrantType, "unsupported_grant_type", 400},
		{ErrUnsupportedResponseType, "unsupported_response_type", 400},
		{ErrInvalidScope, "invalid_scope", 400},
		{ErrAccessDenied, "access_denied", 403},
		{ErrServerError, "server_error", 500},
		{ErrTemporarilyUnavailable, "temporarily_unavailable", 503},
		{ErrInvalidTarget, "invalid_target", 400},
		{ErrInvalidToken, "invalid_token", 401},
		{ErrInsufficientScope, "insufficient_scope", 403},
		{ErrLoginRequired, "login_required", 400},
		{ErrConsentRequired, "consent_required", 400},
		{ErrInvalidRedirectURI, "invalid_redirect_uri", 400},
		{ErrInvalidClientMetadata, "invalid_client_metadata", 400},
	}
	for _, tt := range tests {
		if tt.err.Code != tt.code || tt.err.Status != tt.status || tt.err.Description != "" {
			t.Errorf("%s = %+v, want code %q status %d and no description", tt.code, tt.err, tt.code, tt.status)
		}
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		basic      bool
		preset     string // WWW-Authenticate set by the caller
		wantStatus int
		wantBody   map[string]string
		wantAuth   string
		wantLogged bool
	}{
		{
			name:       "value",
			err:        ErrInvalidGrant.WithDescription("The code has expired."),
			wantStatus: 400,
			wantBody:   map[string]string{"error": "invalid_grant", "error_description": "The code has expired."},
		},
		{
			name:       "no description omitted",
			err:        ErrUnsupportedGrantType,
			wantStatus: 400,
			wantBody:   map[string]string{"error": "unsupported_grant_type"},
		},
		{
			name:       "pointer",
			err:        &Error{Code: "invalid_scope", Description: "Unknown scope.", Status: 400},
			wantStatus: 400,
			wantBody:   map[string]string{"error": "invalid_scope", "error_description": "Unknown scope."},
		},
		{
			name:       "wrapped",
			err:        fmt.Errorf("token: %w", ErrInvalidTarget),
			wantStatus: 400,
			wantBody:   map[string]string{"error": "invalid_target"},
		},
		{
			name:       "status zero defaults to 400",
			err:        Error{Code: "invalid_request"},
			wantStatus: 400,
			wantBody:   map[string]string{"error": "invalid_request"},
		},
		{
			name:       "invalid_client with Basic",
			err:        ErrInvalidClient,
			basic:      true,
			wantStatus: 401,
			wantBody:   map[string]string{"error": "invalid_client"},
			wantAuth:   `Basic realm="authgpts"`,
		},
		{
			name:       "invalid_client without Basic is still 401",
			err:        ErrInvalidClient.WithDescription("Client authentication failed."),
			wantStatus: 401,
			wantBody:   map[string]string{"error": "invalid_client", "error_description": "Client authentication failed."},
		},
		{
			name:       "invalid_client built without status",
			err:        Error{Code: "invalid_client"},
			wantStatus: 401,
			wantBody:   map[string]string{"error": "invalid_client"},
		},
		{
			name:       "invalid_token gets a Bearer challenge",
			err:        ErrInvalidToken.WithDescription("The access token has expired."),
			wantStatus: 401,
			wantBody:   map[string]string{"error": "invalid_token", "error_description": "The access token has expired."},
			wantAuth:   `Bearer realm="authgpts", error="invalid_token", error_description="The access token has expired."`,
		},
		{
			name:       "unsafe description left out of the challenge",
			err:        ErrInsufficientScope.WithDescription(`needs "write"`),
			wantStatus: 403,
			wantBody:   map[string]string{"error": "insufficient_scope", "error_description": `needs "write"`},
			wantAuth:   `Bearer realm="authgpts", error="insufficient_scope"`,
		},
		{
			name:       "caller challenge kept",
			err:        ErrInvalidToken,
			preset:     `Bearer resource_metadata="https://as.example/.well-known/oauth-protected-resource/gw/x"`,
			wantStatus: 401,
			wantBody:   map[string]string{"error": "invalid_token"},
			wantAuth:   `Bearer resource_metadata="https://as.example/.well-known/oauth-protected-resource/gw/x"`,
		},
		{
			name:       "unexpected error hides the cause",
			err:        fmt.Errorf("store: redeem code agc_SECRETVALUE: %w", errors.New("connection refused")),
			wantStatus: 500,
			wantBody:   map[string]string{"error": "server_error", "error_description": serverErrorDescription},
			wantLogged: true,
		},
		{
			name:       "nil error",
			err:        nil,
			wantStatus: 500,
			wantBody:   map[string]string{"error": "server_error", "error_description": serverErrorDescription},
			wantLogged: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			rec := httptest.NewRecorder()
			if tt.preset != "" {
				rec.Header().Set("WWW-Authenticate", tt.preset)
			}
			WriteError(rec, tt.err, tt.basic, log)

			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			checkNoStoreJSON(t, rec)
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.wantAuth {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.wantAuth)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if len(body) != len(tt.wantBody) {
				t.Errorf("body = %v, want %v", body, tt.wantBody)
			}
			for k, v := range tt.wantBody {
				if body[k] != v {
					t.Errorf("body[%q] = %q, want %q", k, body[k], v)
				}
			}
			if strings.Contains(rec.Body.String(), "SECRETVALUE") || strings.Contains(rec.Body.String(), "connection refused") {
				t.Errorf("body leaks the cause: %s", rec.Body)
			}
			if tt.wantLogged != (logs.Len() > 0) {
				t.Errorf("logged = %q, want logged %v", logs.String(), tt.wantLogged)
			}
			if tt.wantLogged && tt.err != nil && !strings.Contains(logs.String(), "connection refused") {
				t.Errorf("log = %q, want the cause", logs.String())
			}
		})
	}
}

func TestWriteErrorNilLogger(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, errors.New("boom"), false, nil) // falls back to slog.Default
	if rec.Code != 500 {
		t.Errorf("status = %d, want 500", rec.Code)
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, map[string]any{"access_token": "x", "token_type": "Bearer", "expires_in": 3600})
	if rec.Code != 200 {
		t.Errorf("status = %d, want 200", rec.Code)
	}
	checkNoStoreJSON(t, rec)
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["token_type"] != "Bearer" || got["expires_in"] != float64(3600) {
		t.Errorf("body = %v", got)
	}

	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, map[string]any{"bad": make(chan int)})
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"server_error"`) {
		t.Errorf("unencodable value: status %d body %s, want 500 server_error", rec.Code, rec.Body)
	}
	checkNoStoreJSON(t, rec)
}

func checkNoStoreJSON(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Type":  "application/json",
		"Cache-Control": "no-store",
		"Pragma":        "no-cache",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

package connections

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Slack's OAuth v2 differs from RFC 6749 in two ways that golang.org/x/oauth2 cannot
// read, so the Slack preset's token requests go through slackTokens:
//
//   - the user token (asked for with user_scope, which is what a connection acting for
//     the user needs) comes inside authed_user; the top level holds a bot token only
//     when bot scopes were asked for, and none are. A refresh (token rotation) answers
//     at the top level.
//   - errors are 200 with "ok": false and a Slack error code.
//
// slackTokens rewrites both into RFC 6749 shapes: the user token's fields at the top
// level (token_type Bearer, as Slack's user tokens are sent), and a 400 with an OAuth
// error code, so a refused refresh reads as a refusal (needs reauthorization); Slack's
// rate limit and internal errors become a 503, tried again later.
type slackTokens struct{ base http.RoundTripper }

// slackTokenLimit bounds a token response read into memory.
const slackTokenLimit = 1 << 20

func (t slackTokens) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, slackTokenLimit))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if dec := json.NewDecoder(bytes.NewReader(body)); dec.Decode(&m) == nil {
		if ok, slackShaped := m["ok"].(bool); slackShaped && !ok {
			slackErr, _ := m["error"].(string)
			code := slackOAuthError(slackErr)
			body, _ = json.Marshal(map[string]string{"error": code, "error_description": "Slack: " + slackErr})
			resp.StatusCode, resp.Status = http.StatusBadRequest, "400 Bad Request"
			if code == "temporarily_unavailable" { // not a refusal: try again later
				resp.StatusCode, resp.Status = http.StatusServiceUnavailable, "503 Service Unavailable"
			}
		} else if user, ok := m["authed_user"].(map[string]any); ok && user["access_token"] != nil {
			for _, k := range []string{"access_token", "refresh_token", "expires_in", "scope"} {
				if v, ok := user[k]; ok {
					m[k] = v
				} else {
					delete(m, k)
				}
			}
			m["token_type"] = "Bearer"
			body, _ = json.Marshal(m)
		} else if m["access_token"] != nil {
			m["token_type"] = "Bearer"
			body, _ = json.Marshal(m)
		}
	}
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// slackOAuthError maps Slack's error codes of oauth.v2.access to RFC 6749's.
func slackOAuthError(code string) string {
	switch {
	case code == "invalid_client_id" || code == "bad_client_secret" || code == "invalid_client":
		return "invalid_client"
	case code == "invalid_code" || code == "code_already_used" || code == "code_expired" ||
		code == "invalid_refresh_token" || code == "token_revoked" || code == "token_expired" ||
		strings.HasPrefix(code, "invalid_grant"):
		return "invalid_grant"
	case code == "ratelimited" || code == "internal_error" || code == "fatal_error" || code == "service_unavailable":
		return "temporarily_unavailable"
	}
	return "invalid_request"
}

// errSlackExpired: auth.revoke found the token expired; it revoked nothing.
var errSlackExpired = errors.New("auth.revoke: token_expired")

// slackRevoked reads auth.revoke's answer (always 200): revoked, a token that no longer
// works anyway, or errSlackExpired; any other error (a rate limit…) is worth another try.
func slackRevoked(body io.Reader) error {
	var a struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(body, slackTokenLimit)).Decode(&a); err != nil {
		return fmt.Errorf("auth.revoke answer: %w", err)
	}
	if a.OK {
		return nil
	}
	switch a.Error {
	case "invalid_auth", "not_authed", "token_revoked", "account_inactive":
		return nil // the token no longer works anyway
	case "token_expired":
		return errSlackExpired
	}
	return fmt.Errorf("auth.revoke answered %q", a.Error)
}

package oauth

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Lifetimes of what the authorization server issues, beside the per-app access- and
// refresh-token lifetimes.
const (
	// CodeTTL: RFC 6749 §4.1.2 recommends at most 10 minutes; clients exchange at once.
	CodeTTL = 5 * time.Minute
	// IDTokenTTL is the lifetime of ID tokens.
	IDTokenTTL = time.Hour
	// RefreshGrace is how long a rotated refresh token is still answered (with its
	// successor) instead of being treated as stolen: a lost response or two concurrent
	// refreshes must not log the user out (RFC 9700 §4.14.2 leaves the policy to us).
	RefreshGrace = 60 * time.Second
)

// Limits on authorization request parameters; longer values are refused rather than
// stored and echoed.
const (
	maxStateLength = 2048
	maxNonceLength = 512
)

// LoginAfterParam is the authorization request parameter the server adds itself when it
// sends the user to sign in again (prompt=login, or max_age exceeded): on the way back,
// a sign-in at or after this Unix time satisfies the request. It is not part of OAuth.
const LoginAfterParam = "login_after"

// Prompt is the OpenID Connect prompt parameter (Core §3.1.2.1).
type Prompt struct {
	None    bool // never show a page: answer login_required or consent_required
	Login   bool // make the user sign in again
	Consent bool // ask for consent even if it was given before
}

// AuthorizationRequest is a validated authorization request (RFC 6749 §4.1.1, RFC 7636,
// OpenID Connect Core §3.1.2.1).
type AuthorizationRequest struct {
	ClientID            string
	RedirectURI         string   // the redirect URI the response goes to
	RedirectURIGiven    bool     // false: omitted, RedirectURI is the single registered one
	State               string   // echoed byte for byte, also on errors
	Scopes              []string // requested scopes, the app's defaults when none were sent
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              Prompt
	MaxAge              int   // seconds; -1 when absent
	LoginAfter          int64 // LoginAfterParam, 0 when absent
}

// AuthorizePolicy is what a client and its app allow in an authorization request.
type AuthorizePolicy struct {
	RequirePKCE   bool     // public clients (RFC 9700 §2.1.1); GPT actions send no PKCE
	Scopes        []string // scopes the app offers
	DefaultScopes []string // granted for an empty scope parameter (ChatGPT sends scope=)
}

// ParseAuthorizeTarget returns the client_id and redirect_uri of an authorization
// request. Its errors must be shown to the user, never redirected: until the client and
// its redirect URI are verified there is nowhere safe to send them (RFC 6749 §4.1.2.1).
func ParseAuthorizeTarget(q url.Values) (clientID, redirectURI string, err error) {
	for _, name := range []string{"client_id", "redirect_uri"} {
		if len(q[name]) > 1 {
			return "", "", ErrInvalidRequest.WithDescription("The " + name + " parameter is repeated.")
		}
	}
	clientID = q.Get("client_id")
	if clientID == "" {
		return "", "", ErrInvalidRequest.WithDescription("The client_id parameter is missing.")
	}
	return clientID, q.Get("redirect_uri"), nil
}

// ResolveRedirectURI returns the redirect URI to answer on: requested when it matches a
// registered one exactly (MatchRedirectURI), or, when none was sent, the single
// registered URI (RFC 6749 §3.1.2.3). ok is false when there is no safe answer.
func ResolveRedirectURI(registered []string, requested string) (string, bool) {
	if requested == "" {
		if len(registered) == 1 {
			return registered[0], true
		}
		return "", false
	}
	if MatchRedirectURI(registered, requested) {
		return requested, true
	}
	return "", false
}

// ParseAuthorizationRequest validates the rest of an authorization request whose client
// and redirect URI are verified. The returned request always carries ClientID,
// RedirectURI and (when well-formed) State, also with an error, so that the error can be
// redirected with its state (RFC 6749 §4.1.2.1).
func ParseAuthorizationRequest(q url.Values, clientID, redirectURI string, p AuthorizePolicy) (AuthorizationRequest, error) {
	req := AuthorizationRequest{ClientID: clientID, RedirectURI: redirectURI, RedirectURIGiven: q.Get("redirect_uri") != "", MaxAge: -1,
		State: StateParam(q)}
	// RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
	for name, vs := range q {
		if len(vs) > 1 {
			return req, ErrInvalidRequest.WithDescription("The " + safeParamName(name) + " parameter is repeated.")
		}
	}
	if len(q.Get("state")) > maxStateLength {
		return req, ErrInvalidRequest.WithDescription("The state parameter is longer than 2048 characters.")
	}

	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return req, ErrInvalidRequest.WithDescription("The response_type parameter is missing.")
	default:
		// RFC 9700 §2.1.2: no implicit or hybrid flows, only the code flow.
		return req, ErrUnsupportedResponseType.WithDescription("Only response_type=code is supported.")
	}
	if rm := q.Get("response_mode"); rm != "" && rm != "query" {
		return req, ErrInvalidRequest.WithDescription("Only response_mode=query is supported.")
	}
	if q.Get("request") != "" || q.Get("request_uri") != "" {
		return req, ErrInvalidRequest.WithDescription("Request objects (request, request_uri) are not supported.")
	}

	scopes, err := ParseScope(q.Get("scope"))
	if err != nil {
		return req, err
	}
	if len(scopes) == 0 {
		// DESIGN.md: an empty scope means the app's default scopes (ChatGPT sends scope=).
		scopes = slices.Clone(p.DefaultScopes)
	}
	for _, s := range scopes {
		if !slices.Contains(p.Scopes, s) {
			return req, ErrInvalidScope.WithDescription("The scope " + safeScope(s) + " is not offered by this app.")
		}
	}
	req.Scopes = scopes

	req.CodeChallenge = q.Get("code_challenge")
	req.CodeChallengeMethod = q.Get("code_challenge_method")
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		return req, ErrInvalidRequest.WithDescription("code_challenge_method was sent without code_challenge.")
	case req.CodeChallenge == "" && p.RequirePKCE:
		// RFC 9700 §2.1.1: public clients must use PKCE.
		return req, ErrInvalidRequest.WithDescription("This client must use PKCE: send code_challenge with code_challenge_method=S256.")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != MethodS256:
		// RFC 7636 §4.3 would default a missing method to "plain"; plain is refused.
		return req, ErrInvalidRequest.WithDescription("code_challenge_method must be S256.")
	case req.CodeChallenge != "" && !ValidChallenge(req.CodeChallenge):
		return req, ErrInvalidRequest.WithDescription("code_challenge must be the base64url SHA-256 of the code verifier (43 characters).")
	}

	req.Nonce = q.Get("nonce")
	if len(req.Nonce) > maxNonceLength {
		return req, ErrInvalidRequest.WithDescription("The nonce parameter is longer than 512 characters.")
	}

	if req.Prompt, err = parsePrompt(q.Get("prompt")); err != nil {
		return req, err
	}
	if ma := q.Get("max_age"); ma != "" {
		n, err := strconv.Atoi(ma)
		if err != nil || n < 0 {
			return req, ErrInvalidRequest.WithDescription("max_age must be a non-negative number of seconds.")
		}
		req.MaxAge = n
	}
	if la := q.Get(LoginAfterParam); la != "" {
		n, err := strconv.ParseInt(la, 10, 64)
		if err != nil || n < 0 {
			return req, ErrInvalidRequest.WithDescription("login_after must be a Unix time.")
		}
		req.LoginAfter = n
	}
	return req, nil
}

// StateParam returns the request's state to echo in an error response: the value when it
// is sent once and not too long, else "".
func StateParam(q url.Values) string {
	if len(q["state"]) == 1 && len(q.Get("state")) <= maxStateLength {
		return q.Get("state")
	}
	return ""
}

// parsePrompt parses the space-delimited prompt values (OpenID Connect Core §3.1.2.1).
// select_account is accepted and ignored: a browser has one signed-in account here.
func parsePrompt(s string) (Prompt, error) {
	var p Prompt
	n := 0
	for v := range strings.FieldsSeq(s) {
		n++
		switch v {
		case "none":
			p.None = true
		case "login":
			p.Login = true
		case "consent":
			p.Consent = true
		case "select_account":
		default:
			return Prompt{}, ErrInvalidRequest.WithDescription("prompt must be none, login, consent or select_account.")
		}
	}
	if p.None && n > 1 {
		return Prompt{}, ErrInvalidRequest.WithDescription("prompt=none cannot be combined with other values.")
	}
	return p, nil
}

// NeedsLogin reports whether the user, last signed in at authTime, must sign in again
// before this request is answered: prompt=login not yet satisfied, or max_age exceeded.
func (r AuthorizationRequest) NeedsLogin(authTime, now time.Time) bool {
	if r.LoginAfter > 0 && authTime.Unix() < r.LoginAfter {
		return true
	}
	if r.Prompt.Login && r.LoginAfter == 0 {
		return true
	}
	if r.MaxAge >= 0 && now.Sub(authTime) > time.Duration(r.MaxAge)*time.Second {
		return true
	}
	return false
}

// ReauthenticationQuery returns the request's query rewritten for the way back from a
// fresh sign-in: prompt=login becomes LoginAfterParam=now, so the request is satisfied
// by that sign-in instead of asking again forever.
func ReauthenticationQuery(q url.Values, now time.Time) url.Values {
	out := make(url.Values, len(q)+1)
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	if prompts := strings.Fields(q.Get("prompt")); slices.Contains(prompts, "login") {
		prompts = slices.DeleteFunc(prompts, func(s string) bool { return s == "login" })
		if len(prompts) == 0 {
			out.Del("prompt")
		} else {
			out.Set("prompt", strings.Join(prompts, " "))
		}
	}
	out.Set(LoginAfterParam, strconv.FormatInt(now.Unix(), 10))
	return out
}

// AuthorizationCodeRedirect returns the redirect URI with the successful response
// added to its query: code, state (when the request had one) and iss (RFC 9207).
// A query the redirect URI was registered with is kept (RFC 6749 §3.1.2).
func AuthorizationCodeRedirect(redirectURI, code, state, issuer string) string {
	v := url.Values{"code": {code}, "iss": {issuer}}
	if state != "" {
		v.Set("state", state)
	}
	return appendQuery(redirectURI, v)
}

// AuthorizationErrorRedirect returns the redirect URI with an error response added to
// its query: error, error_description, state and iss (RFC 6749 §4.1.2.1, RFC 9207).
// An error that is not an Error is sent as server_error with no detail.
func AuthorizationErrorRedirect(redirectURI string, err error, state, issuer string) string {
	e, ok := asError(err)
	if !ok {
		e = ErrServerError.WithDescription(serverErrorDescription)
	}
	v := url.Values{"error": {e.Code}, "iss": {issuer}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	if state != "" {
		v.Set("state", state)
	}
	return appendQuery(redirectURI, v)
}

func appendQuery(uri string, v url.Values) string {
	base, _, _ := strings.Cut(uri, "#") // registered URIs have no fragment; be safe anyway
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
		if strings.HasSuffix(base, "?") || strings.HasSuffix(base, "&") {
			sep = ""
		}
	}
	return base + sep + v.Encode()
}

// safeScope returns s for an error description when it is short, "(too long)" otherwise;
// scope tokens are printable ASCII without '"' or '\' already (IsScopeToken), and the
// quotes used are single, which RFC 6749 §5.2 allows in error_description.
func safeScope(s string) string {
	if len(s) > 64 {
		return "(too long)"
	}
	return "'" + s + "'"
}

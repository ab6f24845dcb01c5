package gateway

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
)

// errorBody is every JSON error the gateway writes: RFC 6750 codes where one applies,
// with extra members for 402 and 429 that a GPT can relay to its user.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	Scope            string `json:"scope,omitempty"`
	Balance          *int64 `json:"balance,omitempty"`
	CreditsPerCall   int64  `json:"credits_per_call,omitempty"`
	RetryAfter       int    `json:"retry_after,omitempty"`
}

// fail writes a gateway error as JSON (no-store, CORS-readable) and returns its status
// for the usage event.
func fail(w http.ResponseWriter, status int, body errorBody) int {
	web.AllowAnyOrigin(w.Header())
	oauth.WriteJSON(w, status, body)
	return status
}

// challenge writes an RFC 6750 §3 error: 400/401/403 with a Bearer WWW-Authenticate
// that names the protected resource metadata (RFC 9728 §5.1). code "" means no token was
// sent, and the challenge then carries no error attribute (§3.1).
func challenge(w http.ResponseWriter, status int, code, description, scope, metadataURL string) int {
	w.Header().Set("WWW-Authenticate", oauth.BearerChallenge{
		Error: code, Description: description, Scope: scope, ResourceMetadata: metadataURL,
	}.String())
	bodyCode := code
	if bodyCode == "" {
		bodyCode = "unauthorized"
	}
	return fail(w, status, errorBody{Error: bodyCode, ErrorDescription: description, Scope: scope})
}

func noCredits(w http.ResponseWriter, appName string, balance, cost int64) int {
	return fail(w, http.StatusPaymentRequired, errorBody{
		Error: "insufficient_credits",
		ErrorDescription: fmt.Sprintf("You have used all your credits for %s (a call costs %d, you have %d left). "+
			"Ask the developer of %s for more credits.", appName, cost, balance, appName),
		Balance:        &balance,
		CreditsPerCall: cost,
	})
}

func rateLimited(w http.ResponseWriter, limit int, wait time.Duration) int {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs)) // RFC 6585 §4
	return fail(w, http.StatusTooManyRequests, errorBody{
		Error:            "rate_limited",
		ErrorDescription: fmt.Sprintf("Too many calls: the limit is %d per minute. Try again in %d seconds.", limit, secs),
		RetryAfter:       secs,
	})
}

func badGateway(w http.ResponseWriter, description string) int {
	return fail(w, http.StatusBadGateway, errorBody{Error: "bad_gateway", ErrorDescription: description})
}

func unavailable(w http.ResponseWriter) int {
	w.Header().Set("Retry-After", "1")
	return fail(w, http.StatusServiceUnavailable, errorBody{
		Error: "temporarily_unavailable", ErrorDescription: "The gateway cannot check this call right now. Try again.",
	})
}

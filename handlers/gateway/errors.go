package gateway

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// errorBody is every JSON error the gateway writes: RFC 6750 codes where one applies,
// with extra members for 402 and 429 that a GPT can relay to its user.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	Scope            string `json:"scope,omitempty"`
	Balance          *int64 `json:"balance,omitempty"`
	CreditsPerCall   int64  `json:"credits_per_call,omitempty"`
	ResetsAt         string `json:"allowance_resets_at,omitempty"`
	TopUpURL         string `json:"top_up_url,omitempty"`
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

// noCredits is the 402 of an exhausted balance: what is left (monthly allowance plus
// credits), what the call costs, when the allowance is renewed (when the app has one)
// and where to buy more (when the developer set it).
func noCredits(w http.ResponseWriter, app *gatewayApp, balance, cost int64, now time.Time) int {
	desc := fmt.Sprintf("You have used all your credits for %s (this call costs %d, you have %d left).", app.Name, cost, balance)
	body := errorBody{Error: "insufficient_credits", Balance: &balance, CreditsPerCall: cost, TopUpURL: app.Plan.TopUpURL}
	if app.Plan.MonthlyAllowance > 0 {
		reset := store.NextReset(now)
		body.ResetsAt = reset.Format(time.RFC3339)
		desc += " Your monthly allowance is renewed on " + reset.Format("January 2") + " (UTC)."
	}
	if app.Plan.TopUpURL != "" {
		desc += " Get more credits at " + app.Plan.TopUpURL + "."
	} else {
		desc += " Ask the developer of " + app.Name + " for more credits."
	}
	body.ErrorDescription = desc
	w.Header()[canonRemaining] = []string{strconv.FormatInt(balance, 10)}
	return fail(w, http.StatusPaymentRequired, body)
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

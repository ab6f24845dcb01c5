package gateway

import (
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// Metering headers (DESIGN.md, "Metering for AI APIs").
const (
	// HeaderCredits: the upstream reports what the call costs, in credits, as a response
	// header or, on a streamed response, as a trailer. The gateway held the route's
	// price before forwarding and settles to this after the response.
	HeaderCredits = "AuthGPTs-Credits"
	// HeaderUpstreamCost: the upstream reports what the call cost it, in micro-dollars
	// (header or trailer); the usage page shows it beside the credits charged.
	HeaderUpstreamCost = "AuthGPTs-Upstream-Cost"
	// HeaderCreditsRemaining: the credits the caller has left (monthly allowance plus
	// balance) as this instance knows them, on every answer to a metered call.
	HeaderCreditsRemaining = "AuthGPTs-Credits-Remaining"
)

var (
	canonCredits      = textproto.CanonicalMIMEHeaderKey(HeaderCredits)
	canonUpstreamCost = textproto.CanonicalMIMEHeaderKey(HeaderUpstreamCost)
	canonRemaining    = textproto.CanonicalMIMEHeaderKey(HeaderCreditsRemaining)
)

// maxReported bounds a reported value; anything larger is malformed.
const maxReported = 1_000_000_000_000

// report is what the upstream said about the cost of a call.
type report struct {
	credits, upstreamMicros int64
	hasCredits, hasUpstream bool
	warning                 string
}

// read takes the two metering values out of h (a response header or trailer map),
// so they never reach the caller. A later source (the trailer) overrides an earlier one.
func (rp *report) read(h http.Header) {
	if vs, ok := h[canonCredits]; ok {
		delete(h, canonCredits)
		if n, ok := parseReported(vs); ok {
			rp.credits, rp.hasCredits = n, true
		} else {
			rp.warn(HeaderCredits + " was not a whole number of credits (0 or more): ignored")
		}
	}
	if vs, ok := h[canonUpstreamCost]; ok {
		delete(h, canonUpstreamCost)
		if n, ok := parseReported(vs); ok {
			rp.upstreamMicros, rp.hasUpstream = n, true
		} else {
			rp.warn(HeaderUpstreamCost + " was not a whole number of micro-dollars (0 or more): ignored")
		}
	}
}

func (rp *report) warn(msg string) {
	if rp.warning == "" {
		rp.warning = msg
	} else if !strings.Contains(rp.warning, msg) {
		rp.warning += "; " + msg
	}
}

// parseReported accepts exactly one value of ASCII digits, at most maxReported.
func parseReported(vs []string) (int64, bool) {
	if len(vs) != 1 {
		return 0, false
	}
	v := strings.TrimSpace(vs[0])
	if v == "" || len(v) > 13 {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > maxReported {
		return 0, false
	}
	return n, true
}

// trailerBody reads the metering trailers when the upstream's body ends and removes
// them, so the proxy neither announces nor forwards them to the caller.
type trailerBody struct {
	io.ReadCloser
	resp *http.Response
	cl   *call
	done bool
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		if b.resp.Trailer != nil {
			b.cl.report.read(b.resp.Trailer)
		}
	}
	return n, err
}

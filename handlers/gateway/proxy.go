package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// Identity headers the gateway sets on forwarded calls. Any incoming header starting
// with headerPrefix is removed first, so a caller can never forge one.
const (
	headerPrefix    = "X-Authgpts-"
	HeaderUser      = "X-AuthGPTs-User"      // the token's sub: user ID (the upstream subject for an identity source), or client ID for client_credentials
	HeaderIssuer    = "X-AuthGPTs-Issuer"    // who vouches for HeaderUser: the identity source's issuer, or this server
	HeaderEmail     = "X-AuthGPTs-Email"     // only when the email scope was granted
	HeaderScopes    = "X-AuthGPTs-Scopes"    // granted scopes, space-delimited
	HeaderClient    = "X-AuthGPTs-Client"    // the OAuth client ID
	HeaderAssertion = "X-AuthGPTs-Assertion" // a JWT signed with the server's keys, see oauth.GatewayAssertion
)

// assertionTTL is the lifetime of a gateway assertion; one is reused for calls with the
// same token until it has less than assertionMinLeft to live.
const (
	assertionTTL     = oauth.GatewayAssertionMaxTTL
	assertionMinLeft = 20 * time.Second
)

// maxRouteLen bounds the route stored with each usage event.
const maxRouteLen = 256

// call is the per-request state shared between serve and the reverse proxy's hooks.
type call struct {
	target    *url.URL
	rest      *url.URL    // path (and raw path) below /gw/<slug>
	caller    *verified   // the verified token: its identity headers
	assertion []string    // the X-AuthGPTs-Assertion value
	status    int         // upstream status; 0 when it never answered
	headerAt  time.Time   // when the upstream's response headers arrived
	failed    bool        // the proxy's ErrorHandler ran
	linked    http.Header // X-AuthGPTs-Connection-<provider> of the calling user; nil for most apps
	report    report      // the upstream's AuthGPTs-Credits and AuthGPTs-Upstream-Cost
	// refund gives back the call's credits; the proxy hooks run it before the caller
	// sees a 5xx or 502, so a client that reads its balance next sees the refund.
	refund   func() bool
	refunded bool
}

// refundOnce runs the refund at most once.
func (cl *call) refundOnce() {
	if cl.refund != nil && !cl.refunded {
		cl.refunded = cl.refund()
	}
}

type callKey struct{}

// serve is the gateway: every method on /gw/:slug and /gw/:slug/*path.
func (g *Gateway) serve(c *gin.Context) {
	start := time.Now()
	r, w := c.Request, c.Writer
	// Every call becomes a usage event; the request log line adds nothing but cost
	// unless the call failed on our side.
	web.QuietRequest(c)
	if web.IsPreflight(r) {
		web.Preflight(c)
		return
	}
	now := g.cfg.Now()
	slug, rest := c.Param("slug"), c.Param("path")
	app, err := g.apps.get(r.Context(), slug, now)
	if errors.Is(err, store.ErrNotFound) {
		fail(w, http.StatusNotFound, errorBody{Error: "not_found", ErrorDescription: "No API is published at this address."})
		return
	}
	if err != nil {
		web.Log(c).Error("gateway: load app", "slug", slug, "err", err)
		unavailable(w)
		return
	}
	ev := store.UsageEvent{At: now.UTC(), AppID: app.ID, Method: method(r.Method), Route: route(rest)}
	cl := &call{}
	ev.Status = g.handle(c, app, rest, now, cl, &ev)
	end := time.Now()
	if !cl.headerAt.IsZero() {
		end = cl.headerAt
	}
	ev.LatencyMicros = end.Sub(start).Microseconds()
	g.usage.add(ev)
}

// knownRemaining adds AuthGPTs-Credits-Remaining to a refusal of a metered user's call
// before the credit check when this instance knows the figure without a database round
// trip (it spent for the user lately); answers after the credit check always carry it.
func (g *Gateway) knownRemaining(w http.ResponseWriter, app *gatewayApp, v *verified, now time.Time) {
	if !app.MeteringEnabled || v.userID == "" {
		return
	}
	if left, ok := g.credits.peek(leaseKey{app.ID, v.userID}, now); ok {
		w.Header()[canonRemaining] = []string{strconv.FormatInt(left, 10)}
	}
}

// handle runs the checks and the proxy for one call and returns the status answered.
func (g *Gateway) handle(c *gin.Context, app *gatewayApp, rest string, now time.Time, cl *call, ev *store.UsageEvent) int {
	r, w := c.Request, c.Writer
	metadata := func() string { return g.metadataURL(app, rest) } // only errors need it

	// RFC 6750 §2.3 (URI query parameter) is not supported: a token in a URL ends up in
	// logs and Referer headers (RFC 9700 §2.5). Nor is an API key in any parameter.
	if q := r.URL.RawQuery; q != "" && (strings.Contains(q, "access_token") && r.URL.Query().Has("access_token") || keyInQuery(q)) {
		return challenge(w, http.StatusBadRequest, "invalid_request",
			"Send the access token or API key in the Authorization header (or X-API-Key), never in the URL.", "", metadata())
	}
	if !cleanPath(rest) {
		return fail(w, http.StatusBadRequest, errorBody{Error: "invalid_request",
			ErrorDescription: "The path may not contain empty, '.' or '..' segments."})
	}
	required := requiredScope(app.Rules, r.Method, rest)

	auth := r.Header.Get("Authorization")
	token, bearer := "", false
	if auth != "" {
		token, bearer = oauth.BearerToken(auth)
	}
	key, isKey := apiKeyOf(r, token)
	if auth == "" && !isKey {
		return challenge(w, http.StatusUnauthorized, "", "This API needs an access token: send Authorization: Bearer <token>.", required, metadata())
	}
	if !bearer && !isKey {
		return challenge(w, http.StatusUnauthorized, "invalid_token", "The Authorization header must hold a Bearer token.", required, metadata())
	}
	if app.IsSuspended() {
		return challenge(w, http.StatusUnauthorized, "invalid_token", "This API is suspended.", required, metadata())
	}
	var v *verified
	var desc string
	var err error
	if isKey {
		v, err = g.verifyKey(r.Context(), key, app, now)
		desc = descKeyRefused
	} else {
		v, desc, err = g.verify(r.Context(), token, app, now)
	}
	if err != nil {
		web.Log(c).Error("gateway: token status", "app_id", app.ID, "err", err)
		return unavailable(w)
	}
	if v == nil {
		return challenge(w, http.StatusUnauthorized, "invalid_token", desc, required, metadata())
	}
	ev.UserID, ev.APIKeyID = v.userID, v.keyID
	if v.keyID == "" {
		ev.ClientID, ev.GrantID = v.claims.ClientID, v.claims.GrantID
		if !g.audienceCovers(v.claims.Audience, app, rest) {
			return challenge(w, http.StatusUnauthorized, "invalid_token", "The access token is for another resource.", required, metadata())
		}
	}
	if required != "" && !oauth.HasScope(v.scopes, required) {
		// RFC 6750 §3.1: insufficient_scope names the scope needed.
		g.knownRemaining(w, app, v, now)
		return challenge(w, http.StatusForbidden, "insufficient_scope",
			"This call needs the "+required+" scope.", required, metadata())
	}
	if r.ContentLength > g.cfg.MaxBodyBytes {
		g.knownRemaining(w, app, v, now)
		return fail(w, http.StatusRequestEntityTooLarge, errorBody{Error: "request_too_large",
			ErrorDescription: "The request body is larger than this gateway accepts."})
	}
	ok, wait, err := g.limiter.Allow(r.Context(), v.rateKey, app.RateLimitPerMinute, now)
	if err != nil {
		web.Log(c).Error("gateway: rate limit", "app_id", app.ID, "err", err)
		return unavailable(w)
	}
	if !ok {
		g.knownRemaining(w, app, v, now)
		return rateLimited(w, app.RateLimitPerMinute, wait)
	}
	if app.upstream == nil {
		g.knownRemaining(w, app, v, now)
		return badGateway(w, "This API has no upstream configured yet.")
	}
	assertion, err := g.assertion(v, app, now)
	if err != nil {
		web.Log(c).Error("gateway: sign assertion", "app_id", app.ID, "err", err)
		return unavailable(w)
	}

	// Only apps that declare a header connection pay for the lookup; only a user's
	// token (never a service client's) carries that user's linked accounts.
	if app.HeaderConnections && v.claims.GrantID != "" && g.cfg.Connections != nil {
		if cl.linked, err = g.cfg.Connections.HeaderValues(r.Context(), app.ID, v.claims.Subject); err != nil {
			web.Log(c).Error("gateway: connection tokens", "app_id", app.ID, "err", err)
			return unavailable(w)
		}
	}

	// Credits last: nothing is held for a call refused above. The route's price is held
	// now and the call settles to the upstream's reported cost, if any, once it is over.
	metered := app.MeteringEnabled && v.userID != ""
	var m store.Metering
	var h hold
	if metered {
		price, _ := app.prices.Price(r.Method, rest, app.CreditsPerCall)
		m = store.Metering{AppID: app.ID, UserID: v.userID, Free: app.FreeCredits, Allowance: app.Plan.MonthlyAllowance}
		h, err = g.credits.spend(r.Context(), m, price, now)
		if errors.Is(err, store.ErrNoCredits) {
			return noCredits(w, app, h.remaining, price, now)
		}
		if err != nil {
			web.Log(c).Error("gateway: spend credits", "app_id", app.ID, "err", err)
			return unavailable(w)
		}
		w.Header()[canonRemaining] = []string{strconv.FormatInt(h.remaining, 10)}
	}

	cl.target = app.upstream
	cl.rest = &url.URL{Path: rest, RawPath: rawRest(r.URL, c.Param("slug"))}
	cl.caller, cl.assertion = v, assertion
	if h.total() > 0 {
		cl.refund = func() bool {
			// The upstream failed or was never reached: the call is not charged.
			err := g.credits.refund(context.WithoutCancel(r.Context()), m, h, h.total(), now)
			if err != nil {
				web.Log(c).Error("gateway: refund credits", "app_id", app.ID, "err", err)
			}
			return err == nil
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes)
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callKey{}, cl)))

	if cl.failed || cl.status >= 500 {
		cl.refundOnce()
	}
	rp := &cl.report
	ev.Warning = rp.warning
	ev.UpstreamCostMicros, ev.UpstreamCostReported = rp.upstreamMicros, rp.hasUpstream
	switch {
	case cl.refunded || !metered:
	case rp.hasCredits && rp.credits != h.total() && !cl.failed && cl.status < 500:
		ev.Credits, ev.Overdraft = g.settle(c, m, h, rp.credits, now)
	default:
		ev.Credits = h.total()
	}
	status := w.Status()
	if cl.failed && !w.Written() {
		status = 499 // the client went away before anything was answered
	}
	return status
}

// settle moves a call's charge from its hold to the cost the upstream reported: the
// difference goes back, or the rest is taken as far as the credits go, the remainder
// being overdraft. It returns what the call was charged and the overdraft.
func (g *Gateway) settle(c *gin.Context, m store.Metering, h hold, reported int64, now time.Time) (charged, overdraft int64) {
	ctx := context.WithoutCancel(c.Request.Context())
	if reported < h.total() {
		if err := g.credits.refund(ctx, m, h, h.total()-reported, now); err != nil {
			web.Log(c).Error("gateway: settle credits", "app_id", m.AppID, "err", err)
			return h.total(), 0
		}
		return reported, 0
	}
	// The overdraft is also added to the balance row, by the same statement.
	more, overdraft, err := g.credits.takeUpTo(ctx, m, reported-h.total(), now)
	if err != nil {
		web.Log(c).Error("gateway: settle credits", "app_id", m.AppID, "err", err)
	}
	return h.total() + more.total(), overdraft
}

// keyInQuery reports whether some query parameter holds an API key.
func keyInQuery(rawQuery string) bool {
	if !strings.Contains(rawQuery, oauth.PrefixAPIKey) {
		return false
	}
	q, _ := url.ParseQuery(rawQuery)
	for _, vs := range q {
		for _, v := range vs {
			if strings.HasPrefix(strings.TrimSpace(v), oauth.PrefixAPIKey) {
				return true
			}
		}
	}
	return false
}

// verify returns the verified token for app, or nil and a description for the 401. err
// is set only when the database could not be asked.
func (g *Gateway) verify(ctx context.Context, token string, app *gatewayApp, now time.Time) (*verified, string, error) {
	key := hashToken(token)
	v, gen := g.tokens.get(key, now)
	if v != nil {
		if v.appID != app.ID {
			return nil, "The access token is for another API.", nil
		}
		return v, "", nil
	}
	claims, err := g.cfg.Keys.VerifyAccessToken(ctx, token, now, g.issuer)
	if err != nil {
		var oe oauth.Error
		if errors.As(err, &oe) && oe.Description != "" {
			return nil, oe.Description, nil
		}
		return nil, "The access token is invalid.", nil
	}
	if !g.audienceInApp(claims.Audience, app) {
		return nil, "The access token is for another API.", nil
	}
	userID := ""
	if claims.GrantID != "" {
		userID = claims.Subject
	}
	st, err := g.cfg.Store.TokenStatus(ctx, claims.GrantID, claims.ClientID, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, "The access token's grant or client no longer exists.", nil
	case err != nil:
		return nil, "", err
	case st.GrantRevoked:
		return nil, "The access token has been revoked.", nil
	case st.ClientSuspended:
		return nil, "The client of this access token is suspended.", nil
	case st.UserSuspended:
		return nil, "The user of this access token is suspended.", nil
	case !st.Active(app.ID):
		return nil, "The access token is for another API.", nil
	}
	v = newVerified(claims, app.ID)
	g.tokens.put(key, v, gen, now)
	return v, "", nil
}

// resource returns the resource URL of the app, or of one of its sub-paths.
func (g *Gateway) resource(slug, sub string) string {
	return g.issuer + "/gw/" + slug + sub
}

// audienceInApp reports whether some aud is the app's resource or a sub-resource of it.
func (g *Gateway) audienceInApp(aud []string, app *gatewayApp) bool {
	root := g.resource(app.Slug, "")
	for _, a := range aud {
		if a == root || strings.HasPrefix(a, root+"/") {
			return true
		}
	}
	return false
}

// audienceCovers reports whether the token may call this path: an aud equal to the app's
// resource covers every path; a sub-resource (RFC 8707, e.g. <base>/gw/<slug>/mcp)
// covers its own path and the paths below it.
func (g *Gateway) audienceCovers(aud []string, app *gatewayApp, rest string) bool {
	root := g.resource(app.Slug, "")
	for _, a := range aud {
		if a == root {
			return true
		}
		if sub, ok := strings.CutPrefix(a, root); ok && strings.HasPrefix(sub, "/") {
			if under(rest, strings.TrimSuffix(sub, "/")) {
				return true
			}
		}
	}
	return false
}

// under reports whether p is prefix or a path below it (segment-wise).
func under(p, prefix string) bool {
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// MCPPath is the sub-resource of an app open to MCP clients: its 401s point MCP clients
// at the metadata of <base>/gw/<slug>/mcp.
const MCPPath = "/mcp"

// metadataURL is the RFC 9728 metadata URL a 401 names: that of the most specific
// resource the app publishes that covers the path.
func (g *Gateway) metadataURL(app *gatewayApp, rest string) string {
	sub := ""
	if app.MCPEnabled && under(rest, MCPPath) {
		sub = MCPPath
	}
	return g.issuer + "/.well-known/oauth-protected-resource/gw/" + app.Slug + sub
}

// requiredScope returns the scope the first matching rule requires, or "".
func requiredScope(rules []store.ScopeRule, method, rest string) string {
	if rest == "" {
		rest = "/"
	}
	for _, rule := range rules {
		if rule.Method != "*" && rule.Method != method {
			continue
		}
		p := rule.PathPrefix
		if p == "/" || under(rest, strings.TrimSuffix(p, "/")) {
			return rule.Scope
		}
	}
	return ""
}

// cleanPath reports whether the decoded path has no empty, "." or ".." segment: such
// paths could mean another path to the upstream than to the scope rules (RFC 3986 §5.2.4).
func cleanPath(p string) bool {
	if p == "" || p == "/" {
		return true
	}
	trimmed := strings.TrimSuffix(p, "/")
	return path.Clean(trimmed) == trimmed && !strings.ContainsAny(p, "\\\x00")
}

// rawRest is the escaped path below /gw/<slug>, kept as the caller encoded it.
func rawRest(u *url.URL, slug string) string {
	if u.RawPath == "" {
		return ""
	}
	return strings.TrimPrefix(u.RawPath, "/gw/"+slug)
}

// route is the path stored with a usage event: valid UTF-8 PostgreSQL always accepts
// (text may hold neither NUL nor invalid byte sequences, and one rejected row would fail
// its whole COPY batch), at most maxRouteLen bytes. NUL, other control characters and
// bytes that are not part of a valid UTF-8 sequence are written as %XX, as in a URL;
// the cut falls between two characters or escapes, never inside one.
func route(rest string) string {
	if rest == "" {
		return "/"
	}
	clean := len(rest) <= maxRouteLen
	for i := 0; clean && i < len(rest); i++ {
		if c := rest[i]; c < 0x20 || c >= 0x7f {
			clean = false
		}
	}
	if clean { // the common case: short printable ASCII, stored as it is
		return rest
	}
	var b strings.Builder
	b.Grow(min(len(rest), maxRouteLen))
	for i := 0; i < len(rest); {
		r, size := utf8.DecodeRuneInString(rest[i:])
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x20, r == 0x7f:
			if b.Len()+3 > maxRouteLen {
				return b.String()
			}
			b.WriteByte('%')
			b.WriteByte(upperhex[rest[i]>>4])
			b.WriteByte(upperhex[rest[i]&0xf])
			size = 1
		default:
			if b.Len()+size > maxRouteLen {
				return b.String()
			}
			b.WriteString(rest[i : i+size])
		}
		i += size
	}
	return b.String()
}

const upperhex = "0123456789ABCDEF"

// maxMethodLen bounds the method stored with a usage event. net/http accepts only
// token characters (ASCII) in a method, but of any length.
const maxMethodLen = 32

func method(m string) string {
	if len(m) > maxMethodLen {
		return m[:maxMethodLen]
	}
	return m
}

// assertion returns a signed gateway assertion for the token's caller, reusing the last
// one while it has enough life left.
func (g *Gateway) assertion(v *verified, app *gatewayApp, now time.Time) ([]string, error) {
	aud := app.upstreamString
	if a := v.assertion.Load(); a != nil && a.audience == aud && a.expires.Sub(now) > assertionMinLeft {
		return a.header, nil
	}
	exp := now.Add(assertionTTL)
	if v.claims.Expiry.Before(exp) {
		exp = v.claims.Expiry // never outlive the access token
	}
	email := ""
	if oauth.HasScope(v.scopes, "email") {
		email = v.claims.Email
	}
	jwt, err := g.cfg.Keys.KeySet().SignGatewayAssertion(oauth.GatewayAssertion{
		Issuer: g.issuer, Audience: aud, Subject: v.claims.PublicSubject(), ClientID: v.claims.ClientID,
		Scope: strings.Join(v.scopes, " "), Email: email, JTI: newJTI(), IssuedAt: now, Expiry: exp,
	})
	if err != nil {
		return nil, err
	}
	a := &signedAssertion{header: []string{jwt}, audience: aud, expires: exp}
	v.assertion.Store(a)
	return a.header, nil
}

func newJTI() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newProxy builds the reverse proxy. Per-call values travel in the request context.
func (g *Gateway) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			cl := pr.In.Context().Value(callKey{}).(*call)
			out := pr.Out
			t := cl.target
			out.URL.Scheme, out.URL.Host = t.Scheme, t.Host
			out.URL.Path = joinPath(t.Path, cl.rest.Path)
			out.URL.RawPath = ""
			if cl.rest.RawPath != "" {
				out.URL.RawPath = joinPath(t.EscapedPath(), cl.rest.RawPath)
			}
			if t.RawQuery != "" {
				out.URL.RawQuery = t.RawQuery + "&" + out.URL.RawQuery
				out.URL.RawQuery = strings.TrimSuffix(out.URL.RawQuery, "&")
			}
			out.Host = "" // the upstream's own host name
			pr.SetXForwarded()
			h := out.Header
			// RFC 9700 §4.9 / DESIGN: the caller's token never reaches the upstream, nor do
			// the AuthGPTs cookies of a browser that happens to call the gateway.
			h.Del("Authorization")
			h.Del("Proxy-Authorization")
			h.Del("Cookie")
			for k := range h {
				if len(k) >= len(headerPrefix) && strings.EqualFold(k[:len(headerPrefix)], headerPrefix) {
					delete(h, k)
				}
			}
			// The values are built once per verified token and shared read-only.
			for _, kv := range cl.caller.identity {
				h[kv.key] = kv.value
			}
			h[canonAssertion] = cl.assertion
			for k, v := range cl.linked {
				h[k] = v
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			cl := resp.Request.Context().Value(callKey{}).(*call)
			cl.status, cl.headerAt = resp.StatusCode, time.Now()
			if resp.StatusCode >= 500 {
				cl.refundOnce()
			}
			h := resp.Header
			// The upstream's cost reports are for the gateway only (DESIGN.md, metering).
			cl.report.read(h)
			delete(h, canonRemaining)
			if resp.Trailer != nil || resp.ContentLength < 0 {
				delete(resp.Trailer, canonCredits) // not announced to the caller
				delete(resp.Trailer, canonUpstreamCost)
				resp.Body = &trailerBody{ReadCloser: resp.Body, resp: resp, cl: cl}
			}
			// The upstream's content is served from the AuthGPTs origin: it may not set
			// cookies there, and a browser must not run it as an AuthGPTs page.
			delete(h, "Set-Cookie")
			h["X-Content-Type-Options"] = valNoSniff
			if len(h["Content-Security-Policy"]) == 0 {
				h["Content-Security-Policy"] = valSandbox
			} else {
				h.Add("Content-Security-Policy", "sandbox")
			}
			web.AllowAnyOrigin(h)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			cl := r.Context().Value(callKey{}).(*call)
			cl.failed = true
			cl.refundOnce()
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				fail(w, http.StatusRequestEntityTooLarge, errorBody{Error: "request_too_large",
					ErrorDescription: "The request body is larger than this gateway accepts."})
			case r.Context().Err() != nil:
				// The caller is gone: nobody reads an answer.
			default:
				g.cfg.Log.Warn("gateway: upstream failed", "host", cl.target.Host, "err", err)
				badGateway(w, "The API behind this gateway did not answer.")
			}
		},
		// 0: ReverseProxy flushes every write of a text/event-stream or unknown-length
		// (chunked) response as it arrives, and sends a sized response in one write
		// (FlushInterval -1 would flush sized responses piecemeal too).
		FlushInterval: 0,
		BufferPool:    bufferPool{},
		ErrorLog:      slog.NewLogLogger(g.cfg.Log.Handler(), slog.LevelWarn),
	}
}

// joinPath joins the upstream base path and the path below /gw/<slug> with one slash.
func joinPath(base, rest string) string {
	switch {
	case rest == "":
		if base == "" {
			return "/"
		}
		return base
	case base == "":
		return rest
	}
	return strings.TrimSuffix(base, "/") + rest
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// bufferPool reuses the proxy's copy buffers.
type bufferPool struct{}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

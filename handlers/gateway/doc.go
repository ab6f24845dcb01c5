// Package gateway is the API gateway of journey 4 (DESIGN.md): a GPT or MCP client calls
// <base>/gw/<slug>/<path> with an AuthGPTs access token and the developer's upstream API
// receives only authenticated, paid-for, rate-limited calls.
//
// Routes (registered by Register, outside the browser group: no cookies, no CSRF):
//
//	ANY  /gw/:slug and /gw/:slug/*path                         the proxy
//	GET  /.well-known/oauth-protected-resource/gw/:slug[/*path] RFC 9728 metadata (CORS)
//
// A call goes through, in order: CORS preflight (answered here), app lookup (cached,
// evicted by NOTIFY), token from the Authorization header only (RFC 6750 §2.1; a token in
// the query is refused), token verification (signature, iss, exp/nbf, aud = the app's
// resource or a sub-resource the path falls under, then grant/client/user state; cached by
// SHA-256 of the token until it expires or a revocation arrives), scope rules (403
// insufficient_scope), body size, rate limit per (app, subject) per minute (429), credits
// (402), then httputil.ReverseProxy to the upstream with identity headers and a signed
// assertion. Upstream 5xx or no answer refunds the credits. Every call with a known app
// becomes one usage event, buffered in memory and written in batches with COPY.
//
// Cross-instance signals: the OAuth server (and admin suspensions) run
// pg_notify('authgpts_revocations', 'grant:<id>' | 'client:<id>' | 'app:<id>' | 'user:<id>').
// Every instance hears them on its one shared LISTEN connection (notify.Listener, given as
// Config.Notifications) and evicts matching cache entries; while that connection is down
// the caches are bypassed (every call reads the database), and on reconnect they are
// flushed.
//
// Background work (Start/Close): the usage flusher, the hourly roll-up
// (FOR UPDATE SKIP LOCKED, safe on every instance) and cache sweeping. Close flushes the
// usage buffer; call it after http.Server.Shutdown and before the database closes.
package gateway

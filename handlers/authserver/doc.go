// Package oauth serves the OAuth 2.0 / OpenID Connect endpoints. Protocol rules and
// error values live in the top-level oauth package; this package parses requests, calls
// the store and the key manager, and answers.
//
// Machine endpoints (no cookies, CORS where marked, JSON errors per RFC 6749 §5.2):
//
//	GET  /.well-known/openid-configuration        discovery (CORS, cacheable)
//	GET  /.well-known/oauth-authorization-server  the same document (RFC 8414)
//	GET  /.well-known/jwks.json                   public signing keys (CORS, cacheable)
//	POST /oauth/token                             authorization_code, refresh_token, client_credentials (CORS)
//	GET|POST /oauth/userinfo                      OpenID Connect UserInfo, Bearer (CORS)
//	POST /oauth/introspect                        RFC 7662, for clients of the token's app
//	POST /oauth/revoke                            RFC 7009 (CORS)
//
// Browser endpoints (session, security headers, same-origin POSTs):
//
//	GET  /oauth/authorize   validates the request; sign-in, remembered consent or the consent page
//	POST /oauth/consent     the consent form: Allow or Deny, bound to a signed ticket
//
// The flow: /oauth/authorize checks client_id and redirect_uri first and shows an error
// page when either is wrong (never a redirect); every later error is redirected with
// error, state and iss. A user who is not signed in goes to /login and comes back. When
// the user's live grant already covers the requested scopes the code is issued at once
// (one INSERT); otherwise the consent page shows the app, its developer, the client, the
// redirect host and each scope, and carries a signed ticket that binds the POST to this
// request and this user. Allow records the grant and issues the code; both answers are
// 303 redirects carrying iss (RFC 9207).
//
// Hot path: clients with their app, scopes and secret hashes are cached per instance
// (clientCache: 5 s TTL, dropped at once on NOTIFY 'authgpts_clients', which triggers on
// the client, secret, app and scope tables send on every write); signing keys are in
// memory (signingkeys.Keys);
// a grant's status (revoked, deleted, user suspended) is looked up at most once per
// grant every 5 s and dropped at once on NOTIFY 'authgpts_revocations'. A
// client_credentials token costs no database round trip at all; a code exchange costs
// two (redeem, store the refresh token); a refresh one or two.
package authserver

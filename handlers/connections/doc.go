// Package connections is the vault for end users' third-party accounts (DESIGN.md,
// "Connections"). An app declares providers (portal); an end user links an account at
// one, from the consent page or /account; the developer's API receives the user's
// provider token from the gateway (X-AuthGPTs-Connection-<provider>) or by RFC 8693
// token exchange at /oauth/token. A linked account belongs to one app's provider: a
// token granted for one app is never handed to another.
//
//	GET  /connections/:provider/start?app=<slug>[&mode=popup][&return_to=/path]
//	                                      state (32 random bytes, stored hashed, 10 min,
//	                                      single use, bound to user and session), PKCE S256
//	GET  /connections/callback            code exchange (golang.org/x/oauth2), link, seal
//	POST /account/linked/:id/disconnect   delete and revoke at the provider (RFC 7009)
//
// Service is the part without Gin: sealing (oauth.Vault, key generations with a
// rotation command), refresh 5 minutes before expiry under a PostgreSQL advisory lock,
// the revocation outbox, the gateway's headers and the token exchange.
package connections

// Package resource is the Go middleware for APIs protected by AuthGPTs. It needs no web
// framework (net/http only; oauth/resource/ginresource adapts it to Gin) and no database.
//
// A Verifier checks AuthGPTs access tokens (RFC 9068 JWTs) locally: it reads the
// server's discovery document (<issuer>/.well-known/openid-configuration), fetches the
// JWKS it names, caches it, and refetches it when a token names an unknown key (at most
// once per MinRefreshInterval, so garbage tokens cannot make it hammer the server). It
// checks iss, aud (one of the configured resource URLs), exp/nbf and the required
// scopes, puts the Claims in the request context, and answers RFC 6750 errors as JSON
// with a WWW-Authenticate challenge that names the RFC 9728 metadata.
//
// Behind the AuthGPTs gateway the API can instead check the gateway's signed assertion
// (X-AuthGPTs-Assertion): RequireGateway proves that the call came through the gateway
// and tells who made it, without the caller's access token.
//
//	v, err := resource.New(resource.Config{
//		Issuer:   "https://auth.example.com",
//		Audience: []string{"https://auth.example.com/gw/notes"},
//	})
//	mux.Handle("/notes", v.Require("notes.read")(notesHandler))
//	// in notesHandler: claims, _ := resource.FromContext(r.Context())
package resource

// Package signin is how people sign in: the email one-time-code flow shared by sign-up
// and sign-in (unknown emails get an account once their code is verified, and the answer
// never reveals whether an account exists), and the identity sources (upstream.go): an
// app's OpenID Connect provider, GitHub or the developer's own login page, and the
// operator's providers for the portal (AUTHGPTS_LOGIN_*).
//
//	GET  /login                    email form (also /signup), plus the operator's providers
//	POST /login                    send a code (throttled), show the code form
//	POST /login/verify             check the code, start a session, go back to return_to
//	POST /logout                   end the session
//	GET  /login/upstream           start an upstream sign-in (app= or provider=, return_to=)
//	GET  /login/upstream/callback  the provider's answer (OIDC and GitHub)
//	GET  /login/own/callback       the developer's login page's signed assertion
//	GET  /dev/mail                 development mailbox (development mode only)
package signin

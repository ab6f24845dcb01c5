// Package signin is the email one-time-code flow shared by sign-up and sign-in: unknown
// emails get an account once their code is verified, and the answer never reveals
// whether an account exists.
//
//	GET  /login          email form (also /signup, with sign-up wording)
//	POST /login          send a code (throttled), show the code form
//	POST /login/verify   check the code, start a session, go back to return_to
//	POST /logout         end the session
//	GET  /dev/mail       development mailbox (development mode only)
package signin

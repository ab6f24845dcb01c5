// Package web holds the Gin helpers every surface shares: the responders (Render,
// Redirect, Fail, BadRequest), typed context accessors (CurrentUser, Log), server-side
// sessions, and the middleware chain (request ID and logging, recovery, security
// headers, body limits, cross-origin protection).
//
// Handlers end every branch with exactly one responder call; responders are the only
// place that logs for their status.
package web

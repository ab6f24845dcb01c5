package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/layout"
)

// Render writes a page or fragment. templ renders into a buffer first, so a template
// error becomes a clean 500 rather than half a page.
func Render(c *gin.Context, status int, comp templ.Component) {
	templ.Handler(comp,
		templ.WithStatus(status),
		templ.WithErrorHandler(func(r *http.Request, err error) http.Handler {
			Log(c).Error("render failed", "err", err)
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "Something went wrong on our side.", http.StatusInternalServerError)
			})
		}),
	).ServeHTTP(c.Writer, c.Request)
	c.Abort()
}

// Redirect answers 303 See Other (RFC 9700 §4.12: never 307 after a POST), or an
// HX-Redirect header for HTMX requests, which can't follow a redirect into a new page.
func Redirect(c *gin.Context, location string) {
	if IsHTMX(c) {
		c.Header("HX-Redirect", location)
		c.Status(http.StatusNoContent)
		c.Abort()
		return
	}
	c.Redirect(http.StatusSeeOther, location)
	c.Abort()
}

// Fail answers an error from a store or service call: ErrNotFound is 404, ErrConflict is
// 409, ErrInvalidInput 400, ErrUnavailable (the database is restarting or unreachable)
// a 503 with Retry-After, anything else is logged and answered with a generic 500.
func Fail(c *gin.Context, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		NotFound(c)
	case errors.Is(err, store.ErrConflict):
		Error(c, http.StatusConflict, "That conflicts with something that already exists.", "Choose another value and try again.")
	case errors.Is(err, store.ErrInvalidInput):
		BadRequest(c, msgInvalidText, hintInvalidText)
	case errors.Is(err, store.ErrUnavailable):
		Log(c).Warn("database unavailable", "err", err)
		Unavailable(c)
	default:
		Log(c).Error("request failed", "err", err)
		Error(c, http.StatusInternalServerError, "Something went wrong on our side.", "Try again; if it keeps failing, quote request ID "+RequestID(c)+".")
	}
}

// Unavailable answers 503 with Retry-After: the service cannot answer right now (its
// database is restarting or unreachable) and will again by itself.
func Unavailable(c *gin.Context) {
	c.Header("Retry-After", oauth.RetryAfterUnavailable)
	Error(c, http.StatusServiceUnavailable, "The service is briefly unavailable.", "Nothing was changed. Wait a few seconds and try again.")
}

// NotFound answers 404. Routes a user may not see answer this too, never 403, so that
// nobody learns what exists.
func NotFound(c *gin.Context) {
	Error(c, http.StatusNotFound, "There is nothing here.", "Check the address, or go back to your dashboard.")
}

// MethodNotAllowed answers a known path asked with the wrong method. The OAuth and
// well-known endpoints answer 405 in the RFC 6749 JSON shape, since their clients parse
// every response as JSON; pages answer 404 as for any path, as before.
func MethodNotAllowed(c *gin.Context) {
	p := c.Request.URL.Path
	if strings.HasPrefix(p, "/oauth/") || strings.HasPrefix(p, "/.well-known/") {
		c.Header("Cache-Control", "no-store")
		c.AbortWithStatusJSON(http.StatusMethodNotAllowed, gin.H{
			"error": "invalid_request", "error_description": "This endpoint does not accept " + c.Request.Method + " requests.",
		})
		return
	}
	c.Writer.Header().Del("Allow")
	NotFound(c)
}

// BadRequest answers 400 with a readable message.
func BadRequest(c *gin.Context, message, hint string) {
	Error(c, http.StatusBadRequest, message, hint)
}

// Forbidden answers 403 with a readable message.
func Forbidden(c *gin.Context, message, hint string) {
	Error(c, http.StatusForbidden, message, hint)
}

// ErrorDetail is the portal's JSON error shape: {"detail":{"message","hint"}}.
type ErrorDetail struct {
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// Error answers status with a message people can act on: the portal JSON shape for HTMX
// and JSON clients, an error page otherwise. Messages are fixed strings, never secrets.
func Error(c *gin.Context, status int, message, hint string) {
	if IsHTMX(c) || strings.Contains(c.GetHeader("Accept"), "application/json") {
		c.AbortWithStatusJSON(status, gin.H{"detail": ErrorDetail{Message: message, Hint: hint}})
		return
	}
	Render(c, status, layout.ErrorPage(layout.ErrorVM{Status: status, Message: message, Hint: hint, RequestID: RequestID(c)}))
}

// IsHTMX reports whether htmx sent the request.
func IsHTMX(c *gin.Context) bool { return c.GetHeader("HX-Request") == "true" }

// IsPartial reports whether the request wants a fragment rather than a full page: htmx
// asked, and not as boosted navigation or a history restore.
func IsPartial(c *gin.Context) bool {
	return IsHTMX(c) && c.GetHeader("HX-Boosted") != "true" && c.GetHeader("HX-History-Restore-Request") != "true"
}
